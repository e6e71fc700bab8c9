/* betanet/dpp.h — section of the public C API; include <betanet.h>, not this file.
 *
 * Drift-plus-penalty scheduler (Neely): n_queues queues, n_options services. Option o
 * serves service[o][q] units from queue q per slot at energy penalty energy[o] (mJ). Each
 * step the scheduler picks, among idle (no service, no energy) and the available options,
 * the one minimising
 *   V * energy[o] + sum_q Q_q * (arrivals_q - min(service[o][q], Q_q))
 * then Q_q <- max(Q_q - service, 0) + arrivals_q. Ties go to idle, then to the lower
 * option index. Prefix betanet_dpp_. See docs/dpp.md.
 *
 * Initialisation: betanet_dpp_new calls betanet_init() itself on first use.
 * Thread-safety: a scheduler is used by one thread at a time; distinct ones are independent.
 */
#ifndef BETANET_DPP_H
#define BETANET_DPP_H
#ifndef BETANET_H_INSIDE
#error "include <betanet.h> instead of betanet/dpp.h"
#endif

/* Largest number of queues and of options. */
#define BETANET_DPP_MAX_QUEUES  65536u
#define BETANET_DPP_MAX_OPTIONS 65536u
/* Largest n_queues * n_options (the service matrix: 16 Mi cells, 128 MiB of doubles). */
#define BETANET_DPP_MAX_CELLS   16777216u

typedef struct betanet_dpp_scheduler betanet_dpp_scheduler_t;

/* New scheduler, all backlogs 0, every option serving nothing at energy 0 (calls
 * betanet_init() on first use). Errors: BETANET_E_INVALID (out NULL, 0 queues/options,
 * above the maxima, V < 0, NaN or infinite), BETANET_E_LIMIT (n_queues * n_options
 * above BETANET_DPP_MAX_CELLS), BETANET_E_NOMEM, BETANET_E_CRYPTO
 * (betanet_init failed); *out is NULL on error. */
BETANET_NODISCARD int betanet_dpp_new(uint32_t n_queues, uint32_t n_options, double v,
                                      betanet_dpp_scheduler_t **out);
/* Free a scheduler (NULL is ignored). */
void betanet_dpp_free(betanet_dpp_scheduler_t *s);
/* Define option o: energy (mJ >= 0, finite) and service[n_queues] (>= 0, finite).
 * Errors: BETANET_E_INVALID (NULL, o out of range, bad value; the option is unchanged). */
int betanet_dpp_set_option(betanet_dpp_scheduler_t *s, uint32_t option, double energy, const double *service);
/* Change V (>= 0, finite). Errors: BETANET_E_INVALID. */
int betanet_dpp_set_v(betanet_dpp_scheduler_t *s, double v);
/* One slot: arrivals[n_queues] (>= 0, finite), available[n_options] (nonzero = usable;
 * NULL = all). *chosen receives the option index or -1 for idle, *energy_out (may be
 * NULL) its energy. Errors: BETANET_E_INVALID (the backlogs are unchanged). */
BETANET_NODISCARD int betanet_dpp_step(betanet_dpp_scheduler_t *s, const double *arrivals,
                                       const uint8_t *available, int32_t *chosen, double *energy_out);
/* Copy the backlogs into q[n_queues]. Errors: BETANET_E_INVALID (NULL). */
BETANET_NODISCARD int betanet_dpp_backlog(const betanet_dpp_scheduler_t *s, double *q);

#endif /* BETANET_DPP_H */
