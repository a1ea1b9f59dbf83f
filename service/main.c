/* main.c -- the fanout command: options, start-up, signals, shutdown.
 *
 * Every signal the service cares about is blocked in all threads and taken
 * synchronously here with sigwait(), so no code runs in signal context:
 * SIGTERM/SIGINT drain and stop, SIGHUP reloads the config file. The wait
 * wakes once a second to run the server's watchdog. Threads inherit the blocked mask, so the
 * mask is set before any thread (libcurl, MHD, workers) starts. */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "budget.h"
#include "buf.h"
#include "clock.h"
#include "config.h"
#include "demo.h"
#include "fdlimit.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "pool.h"
#include "server.h"
#include "version.h"

/* How often the connection watchdog looks (header timeouts, dead uploads). */
#define WATCHDOG_MS 250

static void usage(FILE *f)
{
    fprintf(f, "usage: fanout [-c FILE] [--listen HOST:PORT]\n"
               "       fanout --check -c FILE\n"
               "       fanout --schema\n"
               "       fanout --version | --help\n"
               "\n"
               "  -c, --config FILE     configuration (JSON); without it, the embedded demo:\n"
               "                        built-in backends and GET /api/dashboard/{id}\n"
               "  -l, --listen H:P      listen address, overrides \"listen\" (port 0: any)\n"
               "  -k, --check           validate the configuration and exit\n"
               "  -S, --schema          print the configuration's JSON Schema and exit\n"
               "  -V, --version         print the version and exit\n"
               "  -h, --help            print this help and exit\n");
}

/* Print each collected error line with a prefix. */
static void print_errors(const char *prefix, const struct fo_buf *errors)
{
    const char *p = errors->data ? errors->data : "";
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        fprintf(stderr, "%s%.*s\n", prefix, (int)n, p);
        p += n + (nl ? 1 : 0);
    }
}

/* --schema: the config's JSON Schema on stdout. */
static int print_schema(void)
{
    struct fo_buf out;
    fo_buf_init(&out, FO_BUF_UNLIMITED);
    int rc = fo_config_schema(&out);
    if (rc == 0)
        fwrite(out.data, 1, out.len, stdout);
    else
        fprintf(stderr, "fanout: --schema: %s\n", strerror(-rc));
    fo_buf_free(&out);
    return rc == 0 ? 0 : 1;
}

/* Apply --listen to a loaded config. Returns 0 or -EINVAL. */
static int override_listen(struct fo_config *cfg, const char *listen)
{
    char host[64];
    uint16_t port;
    if (!listen)
        return 0;
    if (fo_listen_parse(listen, host, sizeof host, &port) < 0)
        return -EINVAL;
    char *h = strdup(host);
    if (!h)
        return -ENOMEM;
    free(cfg->listen_host);
    cfg->listen_host = h;
    cfg->listen_port = port;
    return 0;
}

/* One warn line per setting that weakens security (fo_config_warnings). */
static void log_insecure(const struct fo_config *cfg)
{
    struct fo_buf w;
    fo_buf_init(&w, 1 << 20);
    (void)fo_config_warnings(cfg, &w);
    const char *p = w.data ? w.data : "";
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char line[512], q[600];
        snprintf(line, sizeof line, "%.*s", (int)n, p);
        fo_log(FO_LOG_WARN, "insecure_config", "\"warning\":%s", fo_log_quote(q, sizeof q, line));
        p += n + (nl ? 1 : 0);
    }
    fo_buf_free(&w);
}

/* SIGHUP: read the file again; a valid config takes over for new requests. */
static void reload(struct fo_server *srv, struct fo_metrics *metrics, const char *path,
                   const char *listen)
{
    if (!path) {
        fo_log(FO_LOG_WARN, "reload_skipped", "\"reason\":\"the embedded default has no file\"");
        return;
    }
    struct fo_buf errors;
    fo_buf_init(&errors, 1 << 20);
    struct fo_config *cfg = NULL;
    int rc = fo_config_load(&cfg, path, &errors);
    if (rc == 0)
        rc = override_listen(cfg, listen);
    if (rc == 0) { /* The certificate first: a bad one fails the whole reload. */
        char err[512];
        rc = fo_server_reload_tls(srv, cfg, err, sizeof err);
        if (rc < 0)
            (void)fo_buf_printf(&errors, "%s\n", err);
    }
    if (rc < 0) {
        /* Counted before it is logged: whoever sees the line sees the count. */
        fo_metrics_reload(metrics, 0);
        struct fo_buf line;
        fo_buf_init(&line, 2 << 20);
        if (fo_log_begin(&line, FO_LOG_ERROR, "reload_failed")) {
            fo_buf_puts(&line, ",\"errors\":");
            fo_json_put_string(&line, errors.data ? errors.data : "", errors.len);
            fo_log_finish(&line);
        }
        fo_buf_free(&line);
        fo_config_destroy(cfg);
        fo_buf_free(&errors);
        return;
    }
    fo_buf_free(&errors);
    fo_log_set_level((enum fo_log_level)cfg->log_level);
    char note[512];
    fo_server_reload(srv, cfg, note, sizeof note);
    fo_metrics_reload(metrics, 1);
    char qnote[600];
    fo_log(FO_LOG_INFO, "reloaded", "\"restart_needed_for\":%s",
           fo_log_quote(qnote, sizeof qnote, note));
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"check", no_argument, NULL, 'k'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {"schema", no_argument, NULL, 'S'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *listen = NULL;
    bool check = false;
    int c;
    while ((c = getopt_long(argc, argv, "c:l:kVhS", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case 'l':
            listen = optarg;
            break;
        case 'k':
            check = true;
            break;
        case 'V':
            printf("fanout %s\n", FO_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        case 'S':
            return print_schema();
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "fanout: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (check && !config_path) {
        fprintf(stderr, "fanout: --check needs -c FILE\n");
        return 2;
    }

    int status = 1;
    struct fo_config *cfg = NULL;
    struct fo_demo *demo = NULL;
    struct fo_pool *pool = NULL;
    struct fo_server *srv = NULL;
    struct fo_metrics *metrics = NULL;
    struct fo_budget *budget = NULL;
    struct fo_buf errors;
    fo_buf_init(&errors, 1 << 20);

    /* Block the signals we wait for before any thread exists. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    fo_fd_raise_limit();

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "fanout: curl_global_init failed\n");
        return 1;
    }

    int rc;
    if (config_path) {
        rc = fo_config_load(&cfg, config_path, &errors);
        if (rc < 0) {
            print_errors(check ? "" : "fanout: ", &errors);
            goto out;
        }
        if (check) {
            fo_buf_reset(&errors);
            (void)fo_config_warnings(cfg, &errors);
            print_errors("warning: ", &errors);
            printf("%s: ok\n", config_path);
            status = 0;
            goto out;
        }
    } else {
        rc = fo_demo_create(&demo);
        if (rc < 0) {
            fprintf(stderr, "fanout: cannot start the demo backends: %s\n", strerror(-rc));
            goto out;
        }
        struct fo_buf text;
        fo_buf_init(&text, FO_BUF_UNLIMITED);
        rc = fo_demo_config(demo, &text);
        if (rc == 0)
            rc = fo_config_parse(&cfg, text.data, text.len, &errors);
        fo_buf_free(&text);
        if (rc < 0) {
            print_errors("fanout: demo config: ", &errors);
            goto out;
        }
    }
    if (override_listen(cfg, listen) < 0) {
        fprintf(stderr, "fanout: --listen %s: expected HOST:PORT with a numeric host\n", listen);
        status = 2;
        goto out;
    }
    fo_log_set_level((enum fo_log_level)cfg->log_level);

    rc = fo_budget_create(&budget, cfg->max_buffered_bytes);
    if (rc < 0)
        goto out;
    struct fo_pool_opts po = {
        .buffered = budget,
        .workers = cfg->workers,
        .max_response_bytes = cfg->max_response_bytes,
        .queue_cap = 4096,
        .max_host_connections = (long)cfg->max_host_connections,
    };
    rc = fo_pool_create(&pool, &po);
    if (rc < 0) {
        fprintf(stderr, "fanout: cannot start workers: %s\n", strerror(-rc));
        goto out;
    }
    rc = fo_metrics_create(&metrics);
    if (rc < 0)
        goto out;
    char err[256] = "";
    rc = fo_server_create(&srv, cfg, pool, metrics, budget, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "fanout: %s\n", err);
        goto out;
    }
    struct fo_config *served = cfg; /* Now the server's; read only for the log lines. */
    cfg = NULL;
    log_insecure(served);
    char qhost[96];
    if (served->listen_tls_host)
        fo_log(FO_LOG_INFO, "listening_tls", "\"host\":%s,\"port\":%u,\"min_version\":\"%s\"",
               fo_log_quote(qhost, sizeof qhost, served->listen_tls_host), fo_server_tls_port(srv),
               served->tls.min_version == 1 ? "1.3" : "1.2");
    if (served->listen_host)
        fo_log(FO_LOG_INFO, "listening", "\"host\":%s,\"port\":%u,\"workers\":%u,\"config\":%s",
               fo_log_quote(qhost, sizeof qhost, served->listen_host), fo_server_port(srv),
               served->workers, config_path ? "\"file\"" : "\"embedded-demo\"");
    fo_notify("READY=1"); /* systemd Type=notify: started once listening. */

    /* The watchdog runs on its own clock: signals (a SIGHUP every 100 ms,
     * say) end the wait early but never postpone it. */
    int64_t next_watch = fo_clock_ms() + WATCHDOG_MS;
    for (;;) {
        int64_t now = fo_clock_ms();
        if (now >= next_watch) {
            fo_server_watchdog(srv);
            next_watch = now + WATCHDOG_MS;
        }
        int64_t wait = next_watch - now;
        struct timespec tick = {wait / 1000, (wait % 1000) * 1000000};
        int sig = sigtimedwait(&sigs, NULL, &tick);
        if (sig < 0)
            continue;
        if (sig == SIGHUP) {
            reload(srv, metrics, config_path, listen);
            continue;
        }
        fo_log(FO_LOG_INFO, "signal", "\"signal\":%d", sig);
        break;
    }
    fo_notify("STOPPING=1"); /* The drain starts. */
    fo_server_stop(srv);
    status = 0;
    fo_log(FO_LOG_INFO, "stopped", NULL);
out:
    fo_server_destroy(srv);
    fo_pool_destroy(pool);
    fo_metrics_destroy(metrics);
    fo_budget_destroy(budget);
    fo_config_destroy(cfg);
    fo_demo_destroy(demo);
    fo_buf_free(&errors);
    curl_global_cleanup();
    return status;
}
