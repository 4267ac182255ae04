/* catalogue_json.h: reads a catalogue file (JSON, spec/recognition.md §2)
 * with jansson into the pure model of catalogue.h. Library `cbcatalogue`:
 * jansson, the C library and the crypto interface; no OpenSSL, libuv,
 * LMDB or protobuf (checked by recognition.catalogue_links).
 *
 * Every error of the file is reported, each by line and column (syntax) or
 * by path (everything else), and nothing is returned unless the whole file
 * is right. */
#ifndef CB_CATALOGUE_JSON_H
#define CB_CATALOGUE_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "catalogue.h"

/* Reads a whole file (at most CATALOGUE_MAX_FILE_BYTES) into a malloc'd
 * buffer. 0, or -1 with the reason in errs. */
int catalogue_read_file(const char *path, uint8_t **buf, size_t *len,
                        struct catalogue_errors *errs);

/* Parses and checks the exact bytes of a catalogue file; the version is
 * catalogue_version() of these bytes. On success 0 and *out; on any
 * problem -1, *out NULL and every problem in errs. */
int catalogue_load_buffer(const void *buf, size_t len, const cb_crypto *crypto,
                          struct catalogue **out, struct catalogue_errors *errs);

/* catalogue_read_file + catalogue_load_buffer. When bytes is not NULL it
 * receives the file's bytes (malloc'd; the caller frees), so that a node
 * can store exactly what it loaded. */
int catalogue_load_file(const char *path, const cb_crypto *crypto, struct catalogue **out,
                        struct catalogue_errors *errs, uint8_t **bytes, size_t *len);

#endif
