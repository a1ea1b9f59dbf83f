/* budget.c -- a process-wide count of buffered bytes (see budget.h). */
#include "budget.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

struct fo_budget {
    atomic_size_t used; /* Bytes charged and not yet released. */
    size_t limit;       /* Admission limit; set at create. */
};

int fo_budget_create(struct fo_budget **out, size_t limit)
{
    struct fo_budget *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    atomic_init(&b->used, 0);
    b->limit = limit;
    *out = b;
    return 0;
}

void fo_budget_destroy(struct fo_budget *b)
{
    free(b);
}

void fo_budget_charge(struct fo_budget *b, size_t n)
{
    if (b && n)
        atomic_fetch_add_explicit(&b->used, n, memory_order_relaxed);
}

void fo_budget_release(struct fo_budget *b, size_t n)
{
    if (b && n)
        atomic_fetch_sub_explicit(&b->used, n, memory_order_relaxed);
}

size_t fo_budget_used(const struct fo_budget *b)
{
    return atomic_load_explicit(&b->used, memory_order_relaxed);
}

bool fo_budget_full(const struct fo_budget *b)
{
    return fo_budget_used(b) >= b->limit;
}
