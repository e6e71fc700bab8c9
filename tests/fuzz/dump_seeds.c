/* dump_seeds.c — write a harness's built-in seeds (fuzz_seed_input) as files, so
 * libFuzzer starts from the same valid inputs as the gcc driver (driver.c).
 * usage: dump_seeds DIR   (files DIR/seed-<n>; nothing when the harness has no seeds) */
#include <stdint.h>
#include <stdio.h>

__attribute__((weak)) size_t fuzz_seed_input(uint8_t *out, size_t cap, unsigned idx);
/* The harness's entry point is linked in but not called here. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv) {
    static uint8_t buf[1 << 20];
    unsigned idx;
    if (argc != 2)
        return 2;
    if (!fuzz_seed_input)
        return 0;
    for (idx = 0; idx < 64; idx++) {
        char path[4096];
        size_t n = fuzz_seed_input(buf, sizeof buf, idx);
        FILE *f;
        if (!n)
            break;
        snprintf(path, sizeof path, "%s/seed-%u", argv[1], idx);
        f = fopen(path, "wb");
        if (!f || fwrite(buf, 1, n, f) != n)
            return 1;
        fclose(f);
    }
    return 0;
}
