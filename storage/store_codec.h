/* store_codec: how store records and keys look in LMDB, and the checks each
 * record passes before it is written and after it is read back
 * (spec/records.md). Internal to storage/. */
#ifndef CB_STORE_CODEC_H
#define CB_STORE_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Upper bounds of encoded sizes, from the field bounds in store.h. A stored
 * value larger than these is corrupt. */
#define STORE_CODEC_LEARNER_MAX 512
#define STORE_CODEC_ACH_MAX 1024
#define STORE_CODEC_ACH_KEY_MAX (8 + 4 + STORE_ISSUER_MAX + 1 + STORE_CODE_MAX)

void store_codec_put_be32(uint8_t *p, uint32_t v);
void store_codec_put_be64(uint8_t *p, uint64_t v);
uint32_t store_codec_get_be32(const void *p);
uint64_t store_codec_get_be64(const void *p);

/* Well-formed UTF-8 (no overlongs, surrogates or code points past
 * U+10FFFF) without C0 control characters or DEL. */
bool store_codec_text_valid(const char *s, size_t len);
bool store_codec_region_valid(const char *region);
/* YYYYMMDD, a real Gregorian date in 1900..2099. */
bool store_codec_date_valid(int32_t yyyymmdd);

/* 0 if valid, else -1 with why[] naming the field and the problem. */
int store_codec_learner_input_valid(const store_learner *l, char *why,
                                    size_t whylen);
int store_codec_achievement_valid(const store_achievement *a, char *why,
                                  size_t whylen);

/* Encoders take valid records (asserted) and write at most *_MAX bytes. */
size_t store_codec_learner_encode(const store_learner *l, uint8_t *out);
int store_codec_learner_decode(const void *data, size_t len, store_learner *out,
                               char *why, size_t whylen);

/* learner_no BE | awarded_on BE | issuer 0x00 code: the primary key of an
 * achievement and the dedupe key of a deposit. */
size_t store_codec_ach_key(uint64_t learner_no, const store_achievement *a,
                           uint8_t *out);
/* The value holds every field but learner_ref (the learner's). */
size_t store_codec_achievement_encode(const store_achievement *a, uint64_t id,
                                      uint8_t *out);
/* True if the direct encoder above writes exactly what protobuf-c writes
 * (checked on sample records; store_open asserts it). */
bool store_codec_encode_self_check(void);
int store_codec_achievement_decode(const void *data, size_t len,
                                   store_achievement *out, char *why,
                                   size_t whylen);
int store_codec_achievement_id(const void *data, size_t len, uint64_t *id);

#endif
