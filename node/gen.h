/* Deterministic synthetic learners and achievements for the demo, tests and
 * benchmarks. Same seed and parameters → byte-identical output on every
 * machine: the generator has its own PRNG (xoshiro256** seeded through
 * splitmix64) and never calls rand(), the clock or the locale.
 *
 * Names come from the paper's examples (shared/DOMAIN.md): the certificates
 * and Shanghai Open University majors of Table 2, 电工（三级）,
 * 美容师（三级）, 机械制造工艺, 电子技术, the appraisal centre, outlets of
 * universities and district branches. Every generated row passes
 * csvimport's validation.
 */
#ifndef CB_GEN_H
#define CB_GEN_H

#include <stdint.h>
#include <stdio.h>

#include "csvimport.h"
#include "idcard.h"

/* xoshiro256** state. */
struct gen_rng {
  uint64_t s[4];
};

void gen_rng_seed(struct gen_rng *r, uint64_t seed);
uint64_t gen_rng_next(struct gen_rng *r);
/* Uniform in [0, n) without modulo bias; n > 0. */
uint64_t gen_rng_below(struct gen_rng *r, uint64_t n);

/* Regions of the federation: "sh", "js", "zj", "ah". Learners of a region
 * mostly hold ID numbers issued there (about 80%), the rest come from
 * other provinces, as with migrants. */
int gen_region_valid(const char *region);

struct gen_learner {
  char id_number[IDCARD_BUFSZ];  /* valid, normalised; birth 1960..2006 */
  char name[CSVIMPORT_NAME_MAX + 1];
};

/* The index-th learner of (seed, region). Distinct indices below
 * gen_learner_capacity() give distinct ID numbers. Returns 0, or -1 for an
 * unknown region or an index beyond the capacity. */
int gen_learner(uint64_t seed, const char *region, uint64_t index,
                struct gen_learner *out);
uint64_t gen_learner_capacity(const char *region);

/* The j-th achievement of a learner: every field filled as the template
 * wants it (kind from all five, depositor matching the kind). Kinds are
 * spread so that any learner with 5 or more achievements has every kind.
 * Returns 0 or -1 (unknown region). */
int gen_achievement(uint64_t seed, const char *region,
                    const struct gen_learner *learner, uint64_t learner_index,
                    uint64_t j, struct csv_row *out);

/* Flags of gen_write_csv. */
#define GEN_SORTED 0x1u   /* rows grouped by learner, in order (default:
                             shuffled, as institutions' exports are) */
#define GEN_CRLF 0x2u     /* CRLF line ends (default LF) */
#define GEN_BOM 0x4u      /* start with a UTF-8 BOM, as Excel writes */

/* Writes the header and learners × achievements_per_learner rows of the
 * import template (spec/import-csv.md) in UTF-8. Shuffling is a keyed
 * permutation of row indices, so memory stays constant for any size.
 * Returns 0, -1 for bad arguments (unknown region, learners beyond
 * capacity, product overflowing), -2 on a write error. */
int gen_write_csv(FILE *out, uint64_t seed, uint64_t learners,
                  uint64_t achievements_per_learner, const char *region,
                  unsigned flags);

/* Writes one row (no header) in template column order, quoting fields as
 * RFC 4180 requires. Returns 0 or -2 on a write error. */
int gen_write_row(FILE *out, const struct csv_row *row, int crlf);

#endif
