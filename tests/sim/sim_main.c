/* sim_main.c: run seeds of the consensus simulation.
 *   cons_sim [--seeds N] [--start S] [--real-every K] [--seed X [--real 0|1]]
 * A failing run prints its seed and the command that replays it exactly. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

int main(int argc, char **argv) {
  uint64_t seeds = 2000, start = 1, one = 0, real_every = 20;
  int real_one = -1;
  bool single = false, verbose = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--seeds") && v) seeds = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(a, "--start") && v) start = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(a, "--real-every") && v) real_every = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(a, "--seed") && v) { one = strtoull(argv[++i], NULL, 10); single = true; }
    else if (!strcmp(a, "--real") && v) real_one = atoi(argv[++i]);
    else if (!strcmp(a, "-v")) verbose = true;
    else {
      fprintf(stderr, "usage: %s [--seeds N] [--start S] [--real-every K] "
                      "[--seed X [--real 0|1]] [-v]\n", argv[0]);
      return 2;
    }
  }
  if (single) {
    start = one;
    seeds = 1;
    verbose = true;
  }
  uint64_t passed = 0, failed = 0, real = 0, heights = 0;
  for (uint64_t seed = start; seed < start + seeds; seed++) {
    bool use_real = single && real_one >= 0 ? real_one != 0
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
