/* bench_transcript: transcript lookup latency through a running cbnode's
 * admin socket, the way an operator's cbctl asks (one blocking request at
 * a time, TranscriptRequest by ID number, reply decoded and checked).
 *
 * Learners are drawn at random (seeded) from the ID numbers of a CSV that
 * was imported into the node, e.g. the one bench_import.sh generates.
 * Prints a table and one JSON line; not a test, nothing is asserted, but
 * lookups that fail or return no achievement are counted and reported.
 *
 *   bench_transcript --socket PATH --csv FILE [--lookups N] [--seed S]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.pb-c.h"
#include "cbctl_client.h"

#define ID_BYTES 18

static double now_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static uint64_t rng_next(uint64_t *s)
{
  uint64_t x = (*s += UINT64_C(0x9e3779b97f4a7c15));
  x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
  return x ^ (x >> 31);
}

static int cmp_id(const void *a, const void *b)
{
  return memcmp(a, b, ID_BYTES);
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The distinct ID numbers (first column) of a CSV, sorted. */
static char (*read_ids(const char *path, size_t *n_out))[ID_BYTES]
{
  FILE *f = fopen(path, "r");
  if (!f) {
    perror(path);
    return NULL;
  }
  size_t n = 0, cap = 1 << 16;
  char(*ids)[ID_BYTES] = malloc(cap * ID_BYTES);
  char line[8192];
  int header = 1;
  while (ids && fgets(line, sizeof line, f)) {
    if (header) {
      header = 0;
      continue;
    }
    char *comma = strchr(line, ',');
    if (!comma || comma - line != ID_BYTES) continue;
    if (n == cap) {
      cap *= 2;
      char(*p)[ID_BYTES] = realloc(ids, cap * ID_BYTES);
      if (!p) {
        free(ids);
        ids = NULL;
        break;
      }
      ids = p;
    }
    memcpy(ids[n++], line, ID_BYTES);
  }
  fclose(f);
  if (!ids) {
    fprintf(stderr, "bench_transcript: out of memory\n");
    return NULL;
  }
  qsort(ids, n, ID_BYTES, cmp_id);
  size_t w = 0;
  for (size_t i = 0; i < n; i++)
    if (w == 0 || memcmp(ids[w - 1], ids[i], ID_BYTES) != 0) memmove(ids[w++], ids[i], ID_BYTES);
  *n_out = w;
  return ids;
}

static void usage(void)
{
  fprintf(stderr, "usage: bench_transcript --socket PATH --csv FILE [--lookups N] [--seed S]\n");
}

int main(int argc, char **argv)
{
  static const struct option opts[] = {{"socket", required_argument, NULL, 's'},
                                       {"csv", required_argument, NULL, 'c'},
                                       {"lookups", required_argument, NULL, 'n'},
                                       {"seed", required_argument, NULL, 'r'},
                                       {NULL, 0, NULL, 0}};
  const char *sock = NULL, *csv = NULL;
  unsigned long lookups = 10000;
  uint64_t seed = 1;
  int ch;
  while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (ch) {
    case 's': sock = optarg; break;
    case 'c': csv = optarg; break;
    case 'n': lookups = strtoul(optarg, NULL, 10); break;
    case 'r': seed = strtoull(optarg, NULL, 10); break;
    default: usage(); return 2;
    }
  }
  if (!sock || !csv || lookups == 0 || optind != argc) {
    usage();
    return 2;
  }
  size_t nids = 0;
  char(*ids)[ID_BYTES] = read_ids(csv, &nids);
  if (!ids) return 1;
  if (nids == 0) {
    fprintf(stderr, "bench_transcript: %s: no ID numbers\n", csv);
    free(ids);
    return 1;
  }
  double *lat = malloc(lookups * sizeof *lat);
  cbctl_conn_t conn;
  char err[1024];
  if (!lat || cbctl_connect(&conn, sock, err, sizeof err) != CBCTL_OK) {
    fprintf(stderr, "bench_transcript: %s\n", lat ? err : "out of memory");
    free(lat);
    free(ids);
    return 1;
  }
  unsigned long failed = 0, empty = 0;
  uint64_t records = 0;
  double t_start = now_us();
  for (unsigned long i = 0; i < lookups; i++) {
    char id[ID_BYTES + 1];
    memcpy(id, ids[rng_next(&seed) % nids], ID_BYTES);
    id[ID_BYTES] = '\0';
    Cb__Envelope req = CB__ENVELOPE__INIT;
    Cb__TranscriptRequest tr = CB__TRANSCRIPT_REQUEST__INIT;
    tr.who_case = CB__TRANSCRIPT_REQUEST__WHO_ID_NUMBER;
    tr.id_number = id;
    req.msg_case = CB__ENVELOPE__MSG_TRANSCRIPT_REQUEST;
    req.transcript_request = &tr;
    frame_msg_t *m = NULL;
    double t0 = now_us();
    int rc = cbctl_call(&conn, &req, CB__ENVELOPE__MSG_TRANSCRIPT_RESPONSE, &m, NULL, err, sizeof err);
    lat[i] = now_us() - t0;
    if (rc != CBCTL_OK) {
      if (failed++ == 0) fprintf(stderr, "bench_transcript: %s: %s\n", id, err);
      if (rc == CBCTL_EIO) {
        lookups = i + 1;
        break;
      }
      continue;
    }
    size_t k = frame_msg_envelope(m)->transcript_response->n_achievements;
    records += k;
    empty += k == 0;
    frame_msg_free(m);
  }
  double total_s = (now_us() - t_start) / 1e6;
  cbctl_close(&conn);
  qsort(lat, lookups, sizeof *lat, cmp_double);
  double p50 = lat[lookups / 2], p99 = lat[(size_t)((double)lookups * 0.99)];
  if ((size_t)((double)lookups * 0.99) >= lookups) p99 = lat[lookups - 1];
  printf("transcript lookups over the admin socket: %lu random learners of %zu, one at a time\n", lookups, nids);
  printf("  p50 %.1f us, p99 %.1f us, max %.1f us, %.0f lookups/s, %.1f records per transcript, %lu failed, %lu empty\n",
         p50, p99, lat[lookups - 1], (double)lookups / total_s, (double)records / (double)lookups, failed, empty);
  printf("{\"bench\":\"transcript\",\"lookups\":%lu,\"learners\":%zu,\"p50_us\":%.1f,\"p99_us\":%.1f,"
         "\"max_us\":%.1f,\"lookups_per_s\":%.0f,\"records_per_transcript\":%.2f,\"failed\":%lu,\"empty\":%lu}\n",
         lookups, nids, p50, p99, lat[lookups - 1], (double)lookups / total_s, (double)records / (double)lookups,
         failed, empty);
  free(lat);
  free(ids);
  return failed ? 1 : 0;
}
