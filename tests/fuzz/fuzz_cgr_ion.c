/* Fuzz the ION contact-plan parser (betanet_cgr_plan_load_ion) and route search on
 * whatever plan it accepts, sometimes under a small entry limit. Invariants: no crash or
 * sanitizer report; on error the plan is unchanged and the error line is within the
 * input; routes are well formed. */
#include <betanet.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    betanet_cgr_plan_t *plan = NULL;
    size_t line = 0, lines = 1, i, n;
    uint32_t found = 0, k, contacts[256];
    betanet_cgr_route_t r;
    uint64_t excluded[1] = {3};
    if (betanet_init() != 0 || betanet_cgr_plan_new(&plan) != 0)
        return 0;
    for (i = 0; i < size; i++)
        lines += data[i] == '\n';
    /* sometimes a small entry limit, so the over-limit rollback runs too */
    if (size && (data[0] & 0x80) && betanet_cgr_plan_set_limit(plan, 1 + data[0] % 8) != 0)
        abort();
    int rc = betanet_cgr_plan_load_ion(plan, (const char *)data, size, &line);
    if (rc != 0) {
        if (line < 1 || line > lines || betanet_cgr_plan_contacts(plan) != 0)
            abort();
    } else {
        for (uint64_t s = 0; s < 4; s++) {
            rc = betanet_cgr_routes(plan, s, s + 1, 0.0, 100.0, 1e9, excluded, 1, 4, &found);
            if (rc == BETANET_E_NOT_FOUND)
                continue;       /* a node the plan never mentions */
            if (rc != 0)
                abort();
            for (k = 0; k < found; k++) {
                if (betanet_cgr_route_get(plan, k, &r, contacts, 256, &n) != 0 || n == 0 || r.hops != n)
                    abort();
                if (n && contacts[0] >= betanet_cgr_plan_contacts(plan))
                    abort();
            }
            if (found) {
                rc = betanet_cgr_book(plan, 0, 10.0);
                if (rc != 0 && rc != BETANET_E_LIMIT)
                    abort();
            }
        }
    }
    betanet_cgr_plan_free(plan);
    return 0;
}
