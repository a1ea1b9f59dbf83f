/* budget.h -- a process-wide count of buffered bytes, checked at admission.
 *
 * Backend response bodies and the answers built from them are held in memory
 * until they are merged or sent. The budget counts those bytes across every
 * request: the worker pool charges each body chunk as it arrives and gives it
 * back when a body is dropped or freed, the HTTP front charges each answer
 * until libmicrohttpd has sent it. The front refuses new requests while the
 * count is over the limit; what is in flight is never cut by it (a request
 * has its own, smaller budget for that: max_request_response_bytes).
 * Threads: every function except create/destroy is thread-safe (relaxed
 * atomics: the count is a load signal, not a lock). */
#ifndef FO_BUDGET_H
#define FO_BUDGET_H

#include <stdbool.h>
#include <stddef.h>

struct fo_budget; /* Opaque. */

/* A budget whose admission limit is 'limit' bytes. Returns 0 and sets *out,
 * or -ENOMEM. */
int fo_budget_create(struct fo_budget **out, size_t limit);

/* Free it. NULL is a no-op. */
void fo_budget_destroy(struct fo_budget *b);

/* Count 'n' more bytes / 'n' bytes fewer. NULL 'b' is a no-op. */
void fo_budget_charge(struct fo_budget *b, size_t n);
void fo_budget_release(struct fo_budget *b, size_t n);

/* Bytes counted now. */
size_t fo_budget_used(const struct fo_budget *b);

/* True while the count is at or over the limit: refuse new work. */
bool fo_budget_full(const struct fo_budget *b);

#endif /* FO_BUDGET_H */
