/* sim.h: deterministic whole-cluster simulation of the consensus core
 * (tests/sim/README.md). One process, virtual time, one seeded random
 * source for every choice: a run replays exactly from its seed. */
#ifndef SIM_H
#define SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cons.h"

enum sim_byz_mode {
  SIM_BYZ_NONE = 0,
  SIM_BYZ_SILENT,
  SIM_BYZ_EQUIVOCATE, /* different proposals and votes to different peers */
  SIM_BYZ_INVALID,    /* proposes and votes for blocks that fail validation */
  SIM_BYZ_REPLAY,     /* resends old messages it has seen */
  SIM_BYZ_MIXED,      /* any of the above, per message */
};

typedef struct sim_opts {
  uint64_t seed;
  uint32_t n;     /* members */
  uint32_t n_byz; /* Byzantine members, <= f */
  int byz_mode;
  bool real_crypto;      /* Ed25519 through OpenSSL instead of the stand-in */
  uint32_t loss_pct;     /* until heal */
  uint32_t dup_pct;      /* until heal */
  uint32_t delay_min_ms, delay_max_ms;
  bool partitions;       /* random splits and heals until heal */
  bool crashes;          /* crash/restart honest members until heal */
  uint64_t fault_ms;     /* faults stop (network heals) at this time */
  uint64_t liveness_ms;  /* after heal, bound for every honest member... */
  uint32_t liveness_heights; /* ...to commit this many new heights */
  uint64_t run_ms;       /* with no faults: run this long (bench) */
  bool verbose;
} sim_opts;

typedef struct sim_stats {
  uint64_t heights;     /* heights committed by every honest member */
  uint64_t msgs, bytes; /* sent by honest members */
  uint64_t signs, verifies;
  uint64_t events, virtual_ms;
  uint64_t evidence, restarts;
} sim_stats;

/* Derive the options of one seed of the test mix (mix chosen by the seed). */
void sim_opts_for_seed(sim_opts *o, uint64_t seed, bool real_crypto);
const char *sim_mix_name(uint64_t seed);
/* 0: all checks held; 1: a check failed (why says which, and where). */
int sim_run(const sim_opts *o, sim_stats *st, char *why, size_t why_len);

/* crypto interfaces (sim_crypto.c) */
typedef struct sim_keyring sim_keyring;
sim_keyring *sim_keyring_new(uint32_t n, uint64_t seed, bool real);
void sim_keyring_free(sim_keyring *k);
/* the crypto interface of member `self` (UINT32_MAX: verify only) */
cons_crypto sim_signer(sim_keyring *k, uint32_t self);
uint64_t sim_keyring_signs(const sim_keyring *k);
uint64_t sim_keyring_verifies(const sim_keyring *k);

#endif
