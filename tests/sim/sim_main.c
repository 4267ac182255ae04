/* sim_main.c: run seeds of the consensus simulation.
 *   cons_sim [--seeds N] [--start S] [--real-every K] [--seed X [--real 0|1]]
 *   cons_sim --list X[:R],Y[:R],...   (regression seeds; R = 1: real Ed25519)
 *   --mix NAME: run only seeds of that fault mix (--seeds N of them from S)
 * A failing run prints its seed and the command that replays it exactly. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define MAX_LIST 256

/* "X[:R],Y[:R],...": seeds with an optional real-crypto flag each. Returns
 * the count, or -1 naming the bad entry on stderr. */
static int parse_list(const char *arg, uint64_t *seeds, int *real, int max) {
  int n = 0;
  const char *p = arg;
  while (*p) {
    char *end;
    if (n == max) {
      fprintf(stderr, "--list: more than %d seeds\n", max);
      return -1;
    }
    if (*p < '0' || *p > '9') goto bad;
    seeds[n] = strtoull(p, &end, 10);
    real[n] = 0;
    if (*end == ':') {
      if ((end[1] != '0' && end[1] != '1')) { p = end; goto bad; }
      real[n] = end[1] - '0';
      end += 2;
    }
    n++;
    if (*end == ',') end++;
    else if (*end) { p = end; goto bad; }
    p = end;
  }
  if (n) return n;
  fprintf(stderr, "--list: no seeds given\n");
  return -1;
bad:
  fprintf(stderr, "--list: bad entry at \"%s\" (want SEED or SEED:0|1)\n", p);
  return -1;
}

int main(int argc, char **argv) {
  uint64_t seeds = 2000, start = 1, one = 0, real_every = 20;
  int real_one = -1;
  bool single = false, verbose = false;
  uint64_t list[MAX_LIST];
  int list_real[MAX_LIST], n_list = 0;
  const char *mix = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--seeds") && v) seeds = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(a, "--start") && v) start = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(a, "--real-every") && v) real_every = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(a, "--seed") && v) { one = strtoull(argv[++i], NULL, 10); single = true; }
    else if (!strcmp(a, "--real") && v) real_one = atoi(argv[++i]);
    else if (!strcmp(a, "--list") && v) {
      n_list = parse_list(argv[++i], list, list_real, MAX_LIST);
      if (n_list < 0) return 2;
    }
    else if (!strcmp(a, "--mix") && v) mix = argv[++i];
    else if (!strcmp(a, "-v")) verbose = true;
    else {
      fprintf(stderr, "usage: %s [--seeds N] [--start S] [--real-every K] "
                      "[--seed X [--real 0|1]] [--list X[:R],...] [--mix NAME] [-v]\n", argv[0]);
      return 2;
    }
  }
  if (single) {
    start = one;
    seeds = 1;
    verbose = true;
  }
  if (n_list) {
    if (single) {
      fprintf(stderr, "--list and --seed exclude each other\n");
      return 2;
    }
    start = 0;
    seeds = (uint64_t)n_list;
  }
  if (mix) {
    bool known = false; /* the mix is chosen by the seed: one of these */
    for (uint64_t k = 0; k < 64 && !known; k++) known = !strcmp(sim_mix_name(k), mix);
    if (!known || single || n_list) {
      fprintf(stderr, known ? "--mix goes with --seeds/--start only\n"
                            : "--mix: no fault mix named \"%s\"\n", mix);
      return 2;
    }
  }
  uint64_t passed = 0, failed = 0, real = 0, heights = 0;
  for (uint64_t k = start, ran = 0; ran < seeds; k++) {
    uint64_t seed = n_list ? list[k] : k;
    if (mix && strcmp(sim_mix_name(seed), mix) != 0) continue;
    ran++;
    bool use_real = n_list ? list_real[k] != 0
                    : single && real_one >= 0 ? real_one != 0
                                              : real_every && seed % real_every == 0;
    sim_opts o;
    sim_stats st;
    char why[512];
    sim_opts_for_seed(&o, seed, use_real);
    o.verbose = verbose;
    real += use_real;
    if (sim_run(&o, &st, why, sizeof why)) {
      failed++;
      printf("FAIL seed=%" PRIu64 " mix=%s real=%d: %s\n  replay: %s --seed %" PRIu64
             " --real %d\n", seed, sim_mix_name(seed), use_real, why, argv[0], seed,
             use_real);
      fflush(stdout);
    } else {
      passed++;
      heights += st.heights;
    }
  }
  printf("sim: %" PRIu64 " seeds passed, %" PRIu64 " failed (%" PRIu64
         " with real Ed25519; %" PRIu64 " heights committed by all honest members)\n",
         passed, failed, real, heights);
  return failed ? 1 : 0;
}
