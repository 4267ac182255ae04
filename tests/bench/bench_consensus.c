/* bench_consensus.c: throughput and cost of the consensus core, measured in
 * the deterministic simulator (tests/sim). Not a test: it prints a table and
 * one JSON summary line.
 *   - simulated heights committed per second of CPU, four members, no faults
 *     and with one message in three lost;
 *   - Ed25519 signs and verifies per height, and their cost on this machine;
 *   - messages and bytes sent per committed height (for the wiring issue). */
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim.h"

static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef struct row {
  const char *name;
  sim_stats st;
  double cpu;
} row;

static int run(row *r, const char *name, uint32_t loss, bool real,
               uint64_t virtual_ms, int seeds) {
  memset(r, 0, sizeof *r);
  r->name = name;
  for (int s = 0; s < seeds; s++) {
    sim_opts o;
    memset(&o, 0, sizeof o);
    o.seed = 424242 + (uint64_t)s;
    o.n = 4;
    o.real_crypto = real;
    o.loss_pct = loss;
    o.delay_min_ms = 1;
    o.delay_max_ms = 15;
    o.fault_ms = loss ? virtual_ms + 1 : 0; /* loss for the whole run */
    o.run_ms = virtual_ms;
    char why[512];
    sim_stats st;
    double t0 = cpu_s();
    if (sim_run(&o, &st, why, sizeof why)) {
      fprintf(stderr, "bench_consensus: run %s seed %" PRIu64 " failed: %s\n", name,
              o.seed, why);
      return 1;
    }
    r->cpu += cpu_s() - t0;
    r->st.heights += st.heights;
    r->st.msgs += st.msgs;
    r->st.bytes += st.bytes;
    r->st.signs += st.signs;
    r->st.verifies += st.verifies;
    r->st.virtual_ms += st.virtual_ms;
  }
  return 0;
}

/* microseconds per Ed25519 sign and verify of a 66-byte vote sign-bytes */
static void ed25519_cost(double *sign_us, double *verify_us) {
  uint8_t seed[32] = {1}, msg[66] = {2}, sig[64];
  EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
  const int n = 2000;
  double t0 = cpu_s();
  for (int i = 0; i < n; i++) {
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t sl = 64;
    msg[0] = (uint8_t)i;
    if (EVP_DigestSignInit(md, NULL, NULL, NULL, k) != 1 ||
        EVP_DigestSign(md, sig, &sl, msg, sizeof msg) != 1)
      abort();
    EVP_MD_CTX_free(md);
  }
  double t1 = cpu_s();
  for (int i = 0; i < n; i++) {
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (EVP_DigestVerifyInit(md, NULL, NULL, NULL, k) != 1) abort();
    (void)EVP_DigestVerify(md, sig, 64, msg, sizeof msg);
    EVP_MD_CTX_free(md);
  }
  double t2 = cpu_s();
  EVP_PKEY_free(k);
  *sign_us = (t1 - t0) / n * 1e6;
  *verify_us = (t2 - t1) / n * 1e6;
}

int main(int argc, char **argv) {
  uint64_t virtual_ms = argc > 1 ? strtoull(argv[1], NULL, 10) : 120000;
  row clean, lossy, real;
  if (run(&clean, "4 members, no faults", 0, false, virtual_ms, 3) ||
      run(&lossy, "4 members, 1/3 loss", 33, false, virtual_ms, 3) ||
      run(&real, "4 members, Ed25519", 0, true, virtual_ms / 4, 1))
    return 1;
  double sign_us, verify_us;
  ed25519_cost(&sign_us, &verify_us);
  row *rows[3] = {&clean, &lossy, &real};
  printf("%-24s %10s %12s %14s %10s %10s %12s %12s\n", "run", "heights",
         "virt s/h", "heights/cpu-s", "msgs/h", "bytes/h", "signs/h", "verifies/h");
  for (int i = 0; i < 3; i++) {
    row *r = rows[i];
    double h = r->st.heights ? (double)r->st.heights : 1;
    printf("%-24s %10" PRIu64 " %12.3f %14.0f %10.1f %10.0f %12.2f %12.2f\n", r->name,
           r->st.heights, r->st.virtual_ms / 1000.0 / h, r->st.heights / r->cpu,
           r->st.msgs / h, r->st.bytes / h, r->st.signs / h, r->st.verifies / h);
  }
  double rh = real.st.heights ? (double)real.st.heights : 1;
  double signs_h = real.st.signs / rh, verifies_h = real.st.verifies / rh;
  double crypto_ms_h = (signs_h * sign_us + verifies_h * verify_us) / 1000.0;
  printf("Ed25519 on this machine: sign %.1f us, verify %.1f us; per height "
         "(all four members) %.1f signs + %.1f verifies = %.2f ms of CPU\n",
         sign_us, verify_us, signs_h, verifies_h, crypto_ms_h);
  printf("{\"bench\":\"consensus\",\"heights_per_cpu_s_clean\":%.0f,"
         "\"heights_per_cpu_s_loss33\":%.0f,\"msgs_per_height\":%.1f,"
         "\"bytes_per_height\":%.0f,\"msgs_per_height_loss33\":%.1f,"
         "\"bytes_per_height_loss33\":%.0f,\"ed25519_signs_per_height\":%.2f,"
         "\"ed25519_verifies_per_height\":%.2f,\"ed25519_sign_us\":%.1f,"
         "\"ed25519_verify_us\":%.1f,\"crypto_ms_per_height\":%.2f,"
         "\"heights_per_cpu_s_ed25519\":%.0f}\n",
         clean.st.heights / clean.cpu, lossy.st.heights / lossy.cpu,
         clean.st.msgs / (double)clean.st.heights, clean.st.bytes / (double)clean.st.heights,
         lossy.st.msgs / (double)lossy.st.heights, lossy.st.bytes / (double)lossy.st.heights,
         signs_h, verifies_h, sign_us, verify_us, crypto_ms_h, real.st.heights / real.cpu);
  return 0;
}
