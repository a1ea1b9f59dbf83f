/* config_io.c -- the configuration's edges: reading the file, the text checks before cJSON,
 * and the "host:port" listen address. See config.h.
 *
 * Kept apart from config.c, which holds the schema tables and never touches the file
 * system: fo_config_load only reads the file whole (under a hard cap) and hands the text to
 * fo_config_parse, which refuses what cJSON would silently cut (NUL bytes, "\u0000"), then
 * applies the root table's defaults and walks it (config_schema.c). fo_listen_parse is
 * shared by the config walk and main's --listen override. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "config_schema.h"

#define MAX_CONFIG_BYTES (16u << 20)

/* Offset of the first "\u0000" escape in a valid JSON text, or -1. cJSON
 * would cut the string there, silently. */
static long find_nul_escape(const char *s, size_t n)
{
    bool in_string = false;
    for (size_t i = 0; i < n; i++) {
        if (!in_string) {
            in_string = s[i] == '"';
        } else if (s[i] == '"') {
            in_string = false;
        } else if (s[i] == '\\') {
            if (i + 5 < n && s[i + 1] == 'u' && memcmp(s + i + 2, "0000", 4) == 0)
                return (long)i;
            i++;
        }
    }
    return -1;
}

/* fo_config_parse, with files the config names taken relative to 'dir'. */
static int parse_in(struct fo_config **out, const char *text, size_t n, struct fo_buf *errors,
                    const char *dir)
{
    struct fo__vctx c = {
        .errors = errors, .nerr = 0, .oom = false, .text = text, .text_len = n, .dir = dir};
    struct fo_config *cfg = NULL;
    cJSON *root = NULL;
    char *copy = NULL;
    int rc = -EINVAL;
    *out = NULL;

    const char *nul = memchr(text, '\0', n);
    if (nul) {
        char p[32];
        snprintf(p, sizeof p, "offset %zu", (size_t)(nul - text));
        fo__errorf(&c, p, "NUL byte in the text");
        goto out;
    }
    /* cJSON's "require null terminated" wants the NUL inside the length. */
    copy = malloc(n + 1);
    if (!copy) {
        rc = -ENOMEM;
        goto out;
    }
    memcpy(copy, text, n);
    copy[n] = '\0';
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(copy, n + 1, &end, 1);
    if (!root) {
        char p[32];
        size_t off = end && end >= copy && end <= copy + n ? (size_t)(end - copy) : 0;
        snprintf(p, sizeof p, "offset %zu", off);
        fo__errorf(&c, p, "not valid JSON");
        goto out;
    }
    long esc = find_nul_escape(copy, n);
    if (esc >= 0) {
        char p[32];
        snprintf(p, sizeof p, "offset %ld", esc);
        fo__errorf(&c, p, "\\u0000 is not allowed in strings");
        goto out;
    }

    cfg = calloc(1, sizeof *cfg);
    if (!cfg) {
        rc = -ENOMEM;
        goto out;
    }
    fo__defaults(&c, &fo__config_root, cfg);
    fo__walk(&c, &fo__config_root, root, "", cfg, NULL);
    if (c.oom)
        rc = -ENOMEM;
    else if (c.nerr == 0)
        rc = 0;
out:
    cJSON_Delete(root);
    free(copy);
    if (rc == 0) {
        *out = cfg;
    } else {
        fo_config_destroy(cfg);
    }
    return rc;
}

int fo_config_parse(struct fo_config **out, const char *text, size_t n, struct fo_buf *errors)
{
    return parse_in(out, text, n, errors, NULL);
}

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
    char dir[4096];
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 0, path);
    if (slash == path)
        snprintf(dir, sizeof dir, "/");
    rc = parse_in(out, text.data ? text.data : "", text.len, errors, slash ? dir : NULL);
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
