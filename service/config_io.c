/* config_io.c -- the configuration's edges: reading the file, and the "host:port" listen
 * address. See config.h.
 *
 * Kept apart from config.c, which validates JSON text and never touches the
 * file system: fo_config_load only reads the file whole (under a hard cap) and
 * hands the text to fo_config_parse. fo_listen_parse is shared by the config
 * walk and main's --listen override. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MAX_CONFIG_BYTES (16u << 20)

/* Append "what: reason\n" when there is an errors buffer. */
static void load_error(struct fo_buf *errors, const char *what, const char *reason)
{
    if (errors)
        (void)fo_buf_printf(errors, "%s: %s\n", what, reason);
}

int fo_config_load(struct fo_config **out, const char *path, struct fo_buf *errors)
{
    struct fo_buf text;
    char p[512];
    char msg[64];
    int rc = 0;
    *out = NULL;
    fo_buf_init(&text, MAX_CONFIG_BYTES);
    snprintf(p, sizeof p, "cannot read %s", path);

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        load_error(errors, p, strerror(-rc));
        goto out;
    }
    for (;;) {
        rc = fo_buf_reserve(&text, 65536);
        if (rc == -E2BIG && text.len < text.max)
            rc = fo_buf_reserve(&text, text.max - text.len);
        if (rc == -E2BIG) {
            char one;
            ssize_t r = read(fd, &one, 1);
            if (r == 0)
                break;
            snprintf(msg, sizeof msg, "larger than %u MiB", MAX_CONFIG_BYTES >> 20);
            load_error(errors, p, msg);
            rc = -EFBIG;
            goto out;
        }
        if (rc < 0)
            goto out;
        ssize_t r = read(fd, text.data + text.len, text.cap - text.len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            load_error(errors, p, strerror(-rc));
            goto out;
        }
        if (r == 0)
            break;
        text.len += (size_t)r;
        text.data[text.len] = '\0';
    }
    rc = fo_config_parse(out, text.data ? text.data : "", text.len, errors);
out:
    if (fd >= 0)
        close(fd);
    fo_buf_free(&text);
    return rc;
}

/* Copy [s, s+n) into host when it is a numeric address of 'family'. */
static int numeric_host(int family, const char *s, size_t n, char *host, size_t hostlen)
{
    char tmp[64];
    unsigned char addr[16];
    if (n >= sizeof tmp || n >= hostlen)
        return -EINVAL;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (inet_pton(family, tmp, addr) != 1)
        return -EINVAL;
    memcpy(host, tmp, n + 1);
    return 0;
}

int fo_listen_parse(const char *s, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon;
    int rc;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -EINVAL;
        colon = close + 1;
        rc = numeric_host(AF_INET6, s + 1, (size_t)(close - s - 1), host, hostlen);
    } else if (s[0] == ':') {
        colon = s;
        rc = numeric_host(AF_INET, "0.0.0.0", 7, host, hostlen);
    } else {
        colon = strchr(s, ':');
        if (!colon || strchr(colon + 1, ':'))
            return -EINVAL;
        rc = numeric_host(AF_INET, s, (size_t)(colon - s), host, hostlen);
    }
    if (rc < 0)
        return rc;
    const char *d = colon + 1;
    size_t len = strlen(d);
    if (len == 0 || len > 5)
        return -EINVAL;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (d[i] < '0' || d[i] > '9')
            return -EINVAL;
        v = v * 10 + (unsigned)(d[i] - '0');
    }
    if (v > 65535)
        return -EINVAL;
    *port = (uint16_t)v;
    return 0;
}
