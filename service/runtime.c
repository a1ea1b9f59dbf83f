/* runtime.c -- a configuration in use and its metric series (see runtime.h). */
#include "runtime.h"

#include <stdio.h>
#include <stdlib.h>

/* Release the series (those registered so far, when creation failed
 * half-way) and free 'rt'; the config stays with whoever owns it. */
void fo_runtime_free(struct fo_runtime *rt)
{
    const struct fo_config *cfg = rt->cfg;
    for (size_t i = 0; rt->be_stats && i < cfg->nendpoints; i++) {
        for (size_t b = 0; rt->be_stats[i] && b < cfg->endpoints[i].nbackends; b++)
            fo_metrics_backend_release(rt->metrics, rt->be_stats[i][b]);
        free(rt->be_stats[i]);
    }
    for (size_t i = 0; rt->ep_stats && i < cfg->nendpoints; i++)
        fo_metrics_endpoint_release(rt->metrics, rt->ep_stats[i]);
    for (size_t h = 0; rt->host_stats && h < cfg->aggregate.nallow; h++)
        fo_metrics_backend_release(rt->metrics, rt->host_stats[h]);
    fo_metrics_endpoint_release(rt->metrics, rt->batch_stats);
    fo_metrics_endpoint_release(rt->metrics, rt->other_stats);
    fo_resil_unbind(rt->resil);
    free(rt->be_stats);
    free(rt->ep_stats);
    free(rt->host_stats);
    free(rt);
}

struct fo_runtime *fo_runtime_create(struct fo_metrics *m, struct fo_config *cfg)
{
    struct fo_runtime *rt = calloc(1, sizeof *rt);
    if (!rt)
        return NULL;
    rt->cfg = cfg;
    rt->metrics = m;
    atomic_init(&rt->refs, 1);
    rt->ep_stats = calloc(cfg->nendpoints + 1, sizeof *rt->ep_stats);
    rt->be_stats = calloc(cfg->nendpoints + 1, sizeof *rt->be_stats);
    rt->host_stats = calloc(cfg->aggregate.nallow + 1, sizeof *rt->host_stats);
    if (!rt->ep_stats || !rt->be_stats || !rt->host_stats)
        goto fail;
    char label[512];
    for (size_t i = 0; i < cfg->nendpoints; i++) {
        const struct fo_endpoint_conf *ep = &cfg->endpoints[i];
        snprintf(label, sizeof label, "%s %s", ep->method, ep->path);
        rt->ep_stats[i] = fo_metrics_endpoint(m, label);
        rt->be_stats[i] = calloc(ep->nbackends, sizeof **rt->be_stats);
        if (!rt->be_stats[i])
            goto fail;
        for (size_t b = 0; b < ep->nbackends; b++)
            rt->be_stats[i][b] = fo_metrics_backend(m, rt->ep_stats[i], ep->backends[b].name);
    }
    if (cfg->aggregate.enabled) {
        snprintf(label, sizeof label, "POST %s", cfg->aggregate.path);
        rt->batch_stats = fo_metrics_endpoint(m, label);
        for (size_t h = 0; h < cfg->aggregate.nallow; h++)
            rt->host_stats[h] =
                fo_metrics_backend(m, rt->batch_stats, cfg->aggregate.allow_hosts[h]);
    }
    rt->other_stats = fo_metrics_endpoint(m, "other");
    return rt;
fail:
    fo_runtime_free(rt);
    return NULL;
}

/* Drop one reference; the last one frees the runtime and its config. The
 * acq_rel order makes every request's counting happen before the release. */
void fo_runtime_put(struct fo_runtime *rt)
{
    if (!rt || atomic_fetch_sub_explicit(&rt->refs, 1, memory_order_acq_rel) != 1)
        return;
    struct fo_config *cfg = rt->cfg;
    fo_runtime_free(rt);
    fo_config_destroy(cfg);
}
