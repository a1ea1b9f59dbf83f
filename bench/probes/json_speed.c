/* json_speed.c -- validates each file named on the command line N times, for
 * counting instructions per byte of fo_json_validate under callgrind:
 *
 *   make bench-probe   (builds build/json_speed with the service's flags)
 *   valgrind --tool=callgrind --toggle-collect=fo_json_validate \
 *       --callgrind-out-file=/tmp/cg.out build/json_speed 100 bench/data/s4k.json
 *   grep ^totals: /tmp/cg.out
 *
 * Instructions per byte = Ir inside fo_json_validate and its callees / (N * bytes). The
 * bytes validated are printed on stdout. Exits 1 if a body does not validate. */
#include <stdio.h>
#include <stdlib.h>

#include "json.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s N FILE...\n", argv[0]);
        return 2;
    }
    long n = strtol(argv[1], NULL, 10);
    unsigned long long total = 0;
    for (int a = 2; a < argc; a++) {
        FILE *f = fopen(argv[a], "rb");
        if (!f) {
            perror(argv[a]);
            return 2;
        }
        static char body[1 << 20];
        size_t len = fread(body, 1, sizeof body, f);
        fclose(f);
        for (long i = 0; i < n; i++) {
            if (fo_json_validate(body, len, FO_JSON_DEFAULT_DEPTH, NULL) != 0) {
                fprintf(stderr, "%s: not valid\n", argv[a]);
                return 1;
            }
        }
        total += (unsigned long long)len * (unsigned long long)n;
    }
    printf("%llu\n", total);
    return 0;
}
