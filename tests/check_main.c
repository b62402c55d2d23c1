/* The test runner: every suite in one Check SRunner, so `make check` prints one summary
 * line and the exit code carries the verdict.
 *   build/check_flowrl            all suites
 *   build/check_flowrl ops cli    only the named suites */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/suites.h"

typedef struct {
    const char *name;
    Suite *(*make)(void);
} suite_entry;

#define FR_SUITE_ENTRY(name) {#name, suite_##name},
static const suite_entry k_suites[] = {FR_SUITES(FR_SUITE_ENTRY)};
#define N_SUITES (int)(sizeof k_suites / sizeof k_suites[0])

int main(int argc, char **argv)
{
    SRunner *sr = NULL;
    int missing = 0;
    for (int i = 0; i < N_SUITES; i++) {
        int want = argc <= 1;
        for (int a = 1; a < argc; a++)
            if (strcmp(argv[a], k_suites[i].name) == 0) want = 1;
        if (!want) continue;
        if (!k_suites[i].make) {
            fprintf(stderr, "check_flowrl: suite '%s' is listed in tests/suites.h but not built\n",
                    k_suites[i].name);
            missing++;
            continue;
        }
        if (!sr) sr = srunner_create(k_suites[i].make());
        else srunner_add_suite(sr, k_suites[i].make());
    }
    if (!sr) {
        fprintf(stderr, "check_flowrl: no suite named");
        for (int a = 1; a < argc; a++) fprintf(stderr, " '%s'", argv[a]);
        fprintf(stderr, "; suites:");
        for (int i = 0; i < N_SUITES; i++) fprintf(stderr, " %s", k_suites[i].name);
        fprintf(stderr, "\n");
        return 2;
    }
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 && missing == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
