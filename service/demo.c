/* demo.c -- the embedded default's backends. See demo.h.
 *
 * One libmicrohttpd daemon on 127.0.0.1, ephemeral port, one thread,
 * answering three small JSON APIs. The orders API carries a number no
 * double can hold, to show that fanout passes numbers through exactly. */
#include "demo.h"

#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

struct fo_demo {
    struct MHD_Daemon *daemon;
    uint16_t port; /* Bound port. */
};

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, struct fo_buf *b)
{
    size_t len;
    char *body = fo_buf_release(b, &len);
    if (!body)
        return MHD_NO;
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    static int first_call_marker;
    (void)cls;
    (void)version;
    (void)upload_data;
    if (*req_cls == NULL) { /* Two-phase: answer on the second call (keep-alive). */
        *req_cls = &first_call_marker;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    struct fo_buf b;
    fo_buf_init(&b, 64 * 1024);
    unsigned status = MHD_HTTP_OK;
    if (strcmp(method, "GET") != 0) {
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
        fo_buf_puts(&b, "{\"error\":\"method not allowed\"}");
    } else if (strncmp(url, "/users/", 7) == 0 && url[7]) {
        const char *id = url + 7;
        fo_buf_puts(&b, "{\"id\":");
        fo_json_put_string(&b, id, strlen(id));
        fo_buf_puts(&b, ",\"name\":\"Ada Lovelace\",\"plan\":\"pro\",\"since\":2015}");
    } else if (strcmp(url, "/orders") == 0) {
        const char *user = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "user");
        fo_buf_puts(&b, "{\"user\":");
        fo_json_put_string(&b, user ? user : "", user ? strlen(user) : 0);
        fo_buf_puts(&b, ",\"orders\":[{\"id\":12345678901234567890,\"total\":42.50,"
                        "\"items\":3},{\"id\":12345678901234567891,\"total\":7.25,\"items\":1}]}");
    } else if (strcmp(url, "/flags") == 0) {
        fo_buf_puts(&b, "{\"dark_mode\":true,\"beta_dashboard\":false}");
    } else {
        status = MHD_HTTP_NOT_FOUND;
        fo_buf_puts(&b, "{\"error\":\"not found\"}");
    }
    return answer(c, status, &b);
}

int fo_demo_create(struct fo_demo **out)
{
    struct fo_demo *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d->daemon =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, on_request,
                         NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_END);
    if (!d->daemon) {
        free(d);
        return -EADDRNOTAVAIL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d->daemon, MHD_DAEMON_INFO_BIND_PORT);
    d->port = di ? di->port : 0;
    *out = d;
    return 0;
}

int fo_demo_config(const struct fo_demo *d, struct fo_buf *out)
{
    unsigned p = d->port;
    return fo_buf_printf(
        out,
        "{\"listen\": \"127.0.0.1:8080\", \"timeout_ms\": 1000,\n"
        " \"endpoints\": [{\"path\": \"/api/dashboard/{id}\", \"timeout_ms\": 500,\n"
        "   \"backends\": [\n"
        "     {\"name\": \"user\", \"url\": \"http://127.0.0.1:%u/users/{id}\", \"required\": "
        "true},\n"
        "     {\"name\": \"orders\", \"url\": \"http://127.0.0.1:%u/orders?user={id}\"},\n"
        "     {\"name\": \"flags\", \"url\": \"http://127.0.0.1:%u/flags\", \"merge\": true}]}],\n"
        " \"aggregate\": {\"path\": \"/aggregate\", \"allow_hosts\": [\"127.0.0.1:%u\"]}}\n",
        p, p, p, p);
}

void fo_demo_destroy(struct fo_demo *d)
{
    if (!d)
        return;
    MHD_stop_daemon(d->daemon);
    free(d);
}
