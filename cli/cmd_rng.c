/* flowrl rng: print raw Philox4x32 output so anyone can check a port against flowrl. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "flowrl/philox.h"

typedef struct {
    char key[64], counter[128], coords[96];
    int rounds;
    uint32_t seed, purpose;
    int64_t count;
} rng_opts;

static const fr_opt k_rows[] = {
    FR_OPT_ROW_(rng_opts, key, "key", FR_OPT_STR, "", 0, 0, NULL, "philox: the key words", 0, NULL, "K0,K1"),
    FR_OPT_ROW_(rng_opts, counter, "counter", FR_OPT_STR, "", 0, 0, NULL, "philox: the counter words", 0, NULL,
                "C0,C1,C2,C3"),
    FR_OPT_INT(rng_opts, rounds, "rounds", "10", 1, 16, "philox: rounds R", 0),
    FR_OPT_U32(rng_opts, seed, "seed", "0", "uniform/normal: the seed (required)", 0),
    FR_OPT_U32(rng_opts, purpose, "purpose", "0", "uniform/normal: the purpose (required)", 0),
    FR_OPT_ROW_(rng_opts, coords, "coords", FR_OPT_STR, "", 0, 0, NULL, "uniform/normal: the coordinates (required)",
                0, NULL, "C0,C1,C2"),
    FR_OPT_I64(rng_opts, count, "count", "8", 0, 100000000, "uniform/normal: how many values", 0),
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: flowrl rng philox --key K0,K1 --counter C0,C1,C2,C3 [--rounds R]\n"
            "       flowrl rng uniform|normal --seed S --purpose P --coords C0,C1,C2 [--count N]\n\n"
            "philox   the four output words of Philox4x32-R as 8-digit hex; numbers are decimal\n"
            "         or 0x-prefixed hex. Known answer (Random123 kat_vectors):\n"
            "         flowrl rng philox --key 0,0 --counter 0,0,0,0\n"
            "         -> 6627e8d5 e169c58d bc57ac4c 9b00dbd8\n"
            "uniform  the first N uniforms / normals of flowrl's stream\n"
            "normal   (seed, purpose, c0, c1, c2), one per line (%%.9g): key = (seed, purpose),\n"
            "         counter = (c0, c1, c2, i / 4). See include/flowrl/philox.h.\n");
}

/* 0, or 1 with the message when stdout could not be written (a full disk, a closed pipe) */
static int flush_stdout(void)
{
    return fflush(stdout) != 0 || ferror(stdout) ? fr_cli_error("rng", "write error on stdout") : 0;
}

int cmd_rng(int argc, char **argv)
{
    rng_opts r;
    fr_opts o = {.cmd = "rng", .s = {&r}};
    fr_opts_add(&o, "Options", k_rows, (int)(sizeof k_rows / sizeof k_rows[0]), 0);
    if (fr_opts_defaults(&o) != FR_OK) return fr_cli_status("rng", FR_ERR_IO);
    const char *mode = NULL;
    int n_pos = 0;
    fr_opts_seen seen;
    int rc = fr_cli_opts(&o, argc, argv, usage, &mode, 1, &n_pos, &seen);
    if (rc >= 0) return rc;
    if (!n_pos) return fr_cli_usage("rng", "which generator: philox, uniform or normal");
    int philox = strcmp(mode, "philox") == 0;
    int uniform = strcmp(mode, "uniform") == 0, normal = strcmp(mode, "normal") == 0;
    if (!philox && !uniform && !normal)
        return fr_cli_usage("rng", "unknown generator '%s' (philox, uniform or normal)", mode);
    if (philox) {
        unsigned int k[2], c[4];
        if (!fr_cli_parse_u32_list(r.key, 2, k)) return fr_cli_usage("rng", "--key needs two 32-bit integers K0,K1");
        if (!fr_cli_parse_u32_list(r.counter, 4, c))
            return fr_cli_usage("rng", "--counter needs four 32-bit integers C0,C1,C2,C3");
        fr_u32x4 ctr = {{c[0], c[1], c[2], c[3]}};
        fr_u32x4 out = fr_philox4x32_r(r.rounds, ctr, k[0], k[1]);
        printf("%08x %08x %08x %08x\n", out.v[0], out.v[1], out.v[2], out.v[3]);
        return flush_stdout();
    }
    unsigned int cc[3];
    if (!fr_opts_seen_key(&o, &seen, "seed") || !fr_opts_seen_key(&o, &seen, "purpose") ||
        !fr_cli_parse_u32_list(r.coords, 3, cc))
        return fr_cli_usage("rng", "%s needs --seed S --purpose P --coords C0,C1,C2", mode);
    for (int64_t i = 0; i < r.count; i++) {
        float v = uniform ? fr_rng_uniform(r.seed, r.purpose, cc[0], cc[1], cc[2], (uint32_t)i)
                          : fr_rng_normal(r.seed, r.purpose, cc[0], cc[1], cc[2], (uint32_t)i);
        printf("%.9g\n", v);
    }
    return flush_stdout();
}
