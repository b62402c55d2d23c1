/* flowrl rng: print raw Philox4x32 output so anyone can check a port against flowrl. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "flowrl/philox.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: flowrl rng philox --key K0,K1 --counter C0,C1,C2,C3 [--rounds R]\n"
            "       flowrl rng uniform|normal --seed S --purpose P --coords C0,C1,C2 [--count N]\n\n"
            "philox   the four output words of Philox4x32-R (default R = 10) as 8-digit hex;\n"
            "         numbers are decimal or 0x-prefixed hex. Known answer (Random123 kat_vectors):\n"
            "         flowrl rng philox --key 0,0 --counter 0,0,0,0\n"
            "         -> 6627e8d5 e169c58d bc57ac4c 9b00dbd8\n"
            "uniform  the first N (default 8) uniforms / normals of flowrl's stream\n"
            "normal   (seed, purpose, c0, c1, c2), one per line (%%.9g): key = (seed, purpose),\n"
            "         counter = (c0, c1, c2, i / 4). See include/flowrl/philox.h.\n");
}

static int get_opt(int argc, char **argv, int *i, const char *name, const char **val)
{
    if (strcmp(argv[*i], name) != 0) return 0;
    if (*i + 1 >= argc) return -1;
    *val = argv[++*i];
    return 1;
}

int cmd_rng(int argc, char **argv)
{
    if (fr_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *mode = argv[1];
    int philox = strcmp(mode, "philox") == 0;
    int uniform = strcmp(mode, "uniform") == 0, normal = strcmp(mode, "normal") == 0;
    if (!philox && !uniform && !normal) {
        fr_cli_error("rng", "unknown generator '%s' (philox, uniform or normal)", mode);
        return 2;
    }
    const char *key = NULL, *counter = NULL, *rounds = "10", *seed = NULL, *purpose = NULL,
               *coords = NULL, *count = "8";
    for (int i = 2; i < argc; i++) {
        int r = 0;
        const char **targets[] = {&key, &counter, &rounds, &seed, &purpose, &coords, &count};
        const char *names[] = {"--key", "--counter", "--rounds", "--seed", "--purpose", "--coords", "--count"};
        for (int k = 0; k < 7 && r == 0; k++) r = get_opt(argc, argv, &i, names[k], targets[k]);
        if (r < 0) {
            fr_cli_error("rng", "%s needs a value", argv[i]);
            return 2;
        }
        if (r == 0) {
            fr_cli_error("rng", "unknown option '%s' (flowrl rng --help)", argv[i]);
            return 2;
        }
    }
    if (philox) {
        unsigned int k[2], c[4], nr;
        if (!key || !fr_cli_parse_u32_list(key, 2, k)) {
            fr_cli_error("rng", "--key needs two 32-bit integers K0,K1");
            return 2;
        }
        if (!counter || !fr_cli_parse_u32_list(counter, 4, c)) {
            fr_cli_error("rng", "--counter needs four 32-bit integers C0,C1,C2,C3");
            return 2;
        }
        if (!fr_cli_parse_u32_list(rounds, 1, &nr) || nr < 1 || nr > 16) {
            fr_cli_error("rng", "--rounds must be 1..16");
            return 2;
        }
        fr_u32x4 ctr = {{c[0], c[1], c[2], c[3]}};
        fr_u32x4 out = fr_philox4x32_r((int)nr, ctr, k[0], k[1]);
        printf("%08x %08x %08x %08x\n", out.v[0], out.v[1], out.v[2], out.v[3]);
        return 0;
    }
    unsigned int s, p, cc[3], n;
    if (!seed || !fr_cli_parse_u32_list(seed, 1, &s) || !purpose || !fr_cli_parse_u32_list(purpose, 1, &p) ||
        !coords || !fr_cli_parse_u32_list(coords, 3, cc)) {
        fr_cli_error("rng", "%s needs --seed S --purpose P --coords C0,C1,C2", mode);
        return 2;
    }
    if (!fr_cli_parse_u32_list(count, 1, &n) || n > 100000000u) {
        fr_cli_error("rng", "--count must be 0..100000000");
        return 2;
    }
    for (unsigned int i = 0; i < n; i++) {
        float v = uniform ? fr_rng_uniform(s, p, cc[0], cc[1], cc[2], i)
                          : fr_rng_normal(s, p, cc[0], cc[1], cc[2], i);
        printf("%.9g\n", v);
    }
    return 0;
}
