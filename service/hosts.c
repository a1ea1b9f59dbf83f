/* hosts.c -- round robin over a backend's origins (see hosts.h). */
#include "hosts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *fo_hosts_url(const char *origin, const char *url)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    p += strcspn(p, "/?#");
    char *out;
    if (asprintf(&out, "%s%s%s", origin, *p == '/' ? "" : "/", p) < 0)
        return NULL;
    return out;
}

int fo_hosts_pick(atomic_uint *rr, size_t n, bool (*ok)(void *arg, size_t i), void *arg)
{
    if (n == 0)
        return -1;
    unsigned start = atomic_fetch_add_explicit(rr, 1, memory_order_relaxed);
    for (size_t k = 0; k < n; k++) {
        size_t i = (start + k) % n;
        if (ok(arg, i)) {
            if (k > 0) /* The next pick starts after the one taken. */
                atomic_fetch_add_explicit(rr, (unsigned)k, memory_order_relaxed);
            return (int)i;
        }
    }
    return -1;
}
