/* Admin requests that reach the federation (admin_lookup.c):
 *   RegionLookupRequest  asks peers for a learner's achievements (deferred
 *                        reply: one signed request per peer, each with its
 *                        own deadline, every answer verified before shown);
 *   AccessLogRequest     which peers looked a learner up on this node.
 * Validators and handlers for admin_handlers.c's tables. */
#ifndef CB_ADMIN_LOOKUP_H
#define CB_ADMIN_LOOKUP_H

#include "admin.h"

#define ADMIN_LOOKUP_TEXT_MAX 256u     /* operator_id, purpose (= PEER_LOOKUP_TEXT_MAX) */
#define ADMIN_LOOKUP_MAX_REGIONS 16u
#define ADMIN_ACCESS_LOG_MAX 2000u      /* entries in one reply */

int admin_validate_region_lookup(const Cb__Envelope *env, char *err, size_t errlen);
int admin_validate_access_log(const Cb__Envelope *env, char *err, size_t errlen);
int admin_handle_region_lookup(node_t *n, const Cb__Envelope *req, admin_reply_t *reply);
int admin_handle_access_log(node_t *n, const Cb__Envelope *req, admin_reply_t *reply);

#endif
