/* Identity and federation key files: see identity.h. */
#include "identity.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#define IDENTITY_FILE_MAX_BYTES 16384u

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

int identity_file_exists(const char *path)
{
  struct stat st;
  return lstat(path, &st) == 0;
}

/* fsync the directory holding path so the new name survives a crash. */
static void sync_parent(const char *path)
{
  char copy[PATH_MAX];
  snprintf(copy, sizeof copy, "%s", path);
  int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
}

/* Creates path exclusively with mode 0600 and writes data durably. */
static int write_secret(const char *path, const void *data, size_t len, char *err, size_t errlen)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return fail(err, errlen, "%s: already exists; refusing to overwrite", path);
    return fail(err, errlen, "%s: cannot create: %s", path, strerror(errno));
  }
  /* The umask can only remove bits, but be explicit about the mode. */
  if (fchmod(fd, 0600) != 0) goto io_fail;
  const char *p = data;
  size_t left = len;
  while (left > 0) {
    ssize_t w = write(fd, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      goto io_fail;
    }
    p += w;
    left -= (size_t)w;
  }
  if (fsync(fd) != 0) goto io_fail;
  if (close(fd) != 0) {
    fd = -1;
    goto io_fail;
  }
  sync_parent(path);
  return 0;
io_fail : {
  int e = errno;
  if (fd >= 0) close(fd);
  unlink(path);
  return fail(err, errlen, "%s: cannot write: %s", path, strerror(e));
}
}

/* Reads a secret file after checking it is a private regular file. *out is
 * NUL-terminated and must be cleansed and freed by the caller. */
static int read_secret(const char *path, char **out, size_t *out_len, char *err, size_t errlen)
{
  *out = NULL;
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ELOOP) return fail(err, errlen, "%s: is a symbolic link; refusing it", path);
    return fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return fail(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return fail(err, errlen, "%s: not a regular file", path);
  }
  if (st.st_mode & 077) {
    close(fd);
    return fail(err, errlen, "%s: mode %04o lets group or others read it; chmod 600 it",
                path, (unsigned)(st.st_mode & 07777));
  }
  if (st.st_uid != geteuid()) {
    close(fd);
    return fail(err, errlen, "%s: owned by uid %u, not by this process (uid %u)", path,
                (unsigned)st.st_uid, (unsigned)geteuid());
  }
  if (st.st_size <= 0 || (uint64_t)st.st_size > IDENTITY_FILE_MAX_BYTES) {
    close(fd);
    return fail(err, errlen, "%s: size %lld is outside 1..%u bytes", path, (long long)st.st_size,
                IDENTITY_FILE_MAX_BYTES);
  }
  size_t n = (size_t)st.st_size;
  char *buf = malloc(n + 1);
  if (!buf) {
    close(fd);
    return fail(err, errlen, "%s: out of memory", path);
  }
  size_t have = 0;
  while (have < n) {
    ssize_t r = read(fd, buf + have, n - have);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    have += (size_t)r;
  }
  close(fd);
  if (have != n) {
    OPENSSL_cleanse(buf, n);
    free(buf);
    return fail(err, errlen, "%s: short read", path);
  }
  buf[n] = '\0';
  *out = buf;
  *out_len = n;
  return 0;
}

static void free_secret(char *buf, size_t len)
{
  if (!buf) return;
  OPENSSL_cleanse(buf, len);
  free(buf);
}

int identity_create(const char *path, char *err, size_t errlen)
{
  if (identity_file_exists(path))
    return fail(err, errlen, "%s: identity key already exists; refusing to overwrite", path);
  EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  if (!key) return fail(err, errlen, "Ed25519 key generation failed");
  BIO *mem = BIO_new(BIO_s_secmem());
  if (!mem) {
    EVP_PKEY_free(key);
    return fail(err, errlen, "out of memory");
  }
  int rc = -1;
  if (PEM_write_bio_PrivateKey(mem, key, NULL, NULL, 0, NULL, NULL) != 1) {
    fail(err, errlen, "cannot encode the identity key as PEM");
  } else {
    char *pem = NULL;
    long n = BIO_get_mem_data(mem, &pem);
    rc = n > 0 ? write_secret(path, pem, (size_t)n, err, errlen)
               : fail(err, errlen, "empty PEM encoding");
  }
  BIO_free(mem);
  EVP_PKEY_free(key);
  return rc;
}

int identity_load(const char *path, EVP_PKEY **out, char *err, size_t errlen)
{
  *out = NULL;
  char *buf;
  size_t n;
  if (read_secret(path, &buf, &n, err, errlen) != 0) return -1;
  BIO *mem = BIO_new_mem_buf(buf, (int)n);
  EVP_PKEY *key = mem ? PEM_read_bio_PrivateKey(mem, NULL, NULL, NULL) : NULL;
  BIO_free(mem);
  free_secret(buf, n);
  ERR_clear_error();
  if (!key) return fail(err, errlen, "%s: not a PEM private key", path);
  if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
    EVP_PKEY_free(key);
    return fail(err, errlen, "%s: key is not Ed25519", path);
  }
  *out = key;
  return 0;
}

int identity_public_raw(const EVP_PKEY *key, uint8_t pub[IDENTITY_PUBKEY_BYTES])
{
  size_t len = IDENTITY_PUBKEY_BYTES;
  if (EVP_PKEY_get_raw_public_key(key, pub, &len) != 1 || len != IDENTITY_PUBKEY_BYTES) return -1;
  return 0;
}

int identity_fedkey_create(const char *path, char *err, size_t errlen)
{
  uint8_t key[IDENTITY_FEDKEY_BYTES];
  char hex[2 * IDENTITY_FEDKEY_BYTES + 2];
  if (RAND_priv_bytes(key, sizeof key) != 1) return fail(err, errlen, "random source failed");
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < sizeof key; i++) {
    hex[2 * i] = digits[key[i] >> 4];
    hex[2 * i + 1] = digits[key[i] & 15];
  }
  hex[2 * IDENTITY_FEDKEY_BYTES] = '\n';
  hex[2 * IDENTITY_FEDKEY_BYTES + 1] = '\0';
  int rc = write_secret(path, hex, 2 * IDENTITY_FEDKEY_BYTES + 1, err, errlen);
  OPENSSL_cleanse(key, sizeof key);
  OPENSSL_cleanse(hex, sizeof hex);
  return rc;
}

static int hexval(char c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int identity_fedkey_load(const char *path, uint8_t key[IDENTITY_FEDKEY_BYTES], char *err,
                         size_t errlen)
{
  char *buf;
  size_t n;
  if (read_secret(path, &buf, &n, err, errlen) != 0) return -1;
  size_t len = n;
  while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
    len--;
  int rc = 0;
  if (len != 2 * IDENTITY_FEDKEY_BYTES) {
    rc = fail(err, errlen, "%s: expected %u hex digits, found %zu characters", path,
              2 * IDENTITY_FEDKEY_BYTES, len);
  } else {
    for (size_t i = 0; i < IDENTITY_FEDKEY_BYTES; i++) {
      int hi = hexval(buf[2 * i]), lo = hexval(buf[2 * i + 1]);
      if (hi < 0 || lo < 0) {
        rc = fail(err, errlen, "%s: character %zu is not a hex digit", path,
                  hi < 0 ? 2 * i + 1 : 2 * i + 2);
        break;
      }
      key[i] = (uint8_t)(hi << 4 | lo);
    }
  }
  free_secret(buf, n);
  if (rc != 0) OPENSSL_cleanse(key, IDENTITY_FEDKEY_BYTES);
  return rc;
}

/* ---- key rotation ---------------------------------------------------------- */

static const registry_key_t *member_key(const registry_member_t *m, const uint8_t *pub)
{
  for (size_t i = 0; i < m->nkeys; i++)
    if (memcmp(m->keys[i].public_key, pub, REGISTRY_KEY_BYTES) == 0) return &m->keys[i];
  return NULL;
}

int identity_choose(const registry_member_t *self, const uint8_t (*pubs)[IDENTITY_PUBKEY_BYTES],
                    size_t n, int64_t now_ms)
{
  if (!self || !pubs) return -1;
  int best = -1;
  const registry_key_t *bk = NULL;
  for (size_t i = 0; i < n && i < INT32_MAX; i++) {
    const registry_key_t *k = member_key(self, pubs[i]);
    if (!k || now_ms < k->not_before_ms || now_ms >= k->not_after_ms) continue;
    if (!bk || k->not_before_ms > bk->not_before_ms ||
        (k->not_before_ms == bk->not_before_ms && k->not_after_ms > bk->not_after_ms)) {
      best = (int)i;
      bk = k;
    }
  }
  return best;
}

int64_t identity_next_change(const registry_member_t *self,
                             const uint8_t (*pubs)[IDENTITY_PUBKEY_BYTES], size_t n, int64_t now_ms)
{
  int64_t next = REGISTRY_TIME_OPEN;
  if (!self || !pubs) return next;
  for (size_t i = 0; i < n; i++) {
    const registry_key_t *k = member_key(self, pubs[i]);
    if (!k) continue;
    if (k->not_before_ms > now_ms && k->not_before_ms < next) next = k->not_before_ms;
    if (k->not_after_ms > now_ms && k->not_after_ms < next) next = k->not_after_ms;
  }
  return next;
}
