/* test_hdrs.c -- unit tests for a call's header lines (xfer_headers.h): the policy, the
 * links curl walks, the X-Timeout-Ms rewrite and the storage kept between calls. */
#include "xfer_headers.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "version.h"

/* The list as one string, lines joined by '|'. */
static const char *joined(struct fo_hdrs *h)
{
    static char out[2048];
    out[0] = '\0';
    for (struct curl_slist *n = fo_hdrs_list(h); n; n = n->next) {
        if (out[0])
            strcat(out, "|");
        strcat(out, n->data);
    }
    return out;
}

static void test_policy(void **state)
{
    (void)state;
    struct fo_hdrs h;
    fo_hdrs_init(&h);
    assert_null(fo_hdrs_list(&h));
    const char *lines[] = {"X-Request-Id: theirs", "X-Empty:", "expect: 100-continue", "X-A: 1"};
    struct fo_call call = {.headers = lines, .nheaders = 4};
    assert_int_equal(fo_hdrs_build(&h, &call, "r1", 250, 0), 0);
    assert_string_equal(joined(&h), "X-Timeout-Ms: 250|X-Request-Id: r1|X-Empty;|X-A: 1"
                                    "|Accept: application/json|User-Agent: fanout/" FO_VERSION);
    /* A retry's attempt, a body of the client's type, the call's own Accept and agent. */
    const char *own[] = {"accept: text/plain", "User-Agent: me", "Content-Type: x/y"};
    struct fo_call post = {.headers = own,
                           .nheaders = 3,
                           .method = "POST",
                           .body = "{}",
                           .body_len = 2,
                           .body_type = "a/b"};
    assert_int_equal(fo_hdrs_build(&h, &post, NULL, 7, 2), 0);
    assert_string_equal(joined(&h), "X-Timeout-Ms: 7|X-Fanout-Attempt: 2|accept: text/plain"
                                    "|User-Agent: me|Content-Type: a/b|Expect:");
    /* A method with a body but none given: Content-Type sent empty unless the call has one. */
    struct fo_call put = {.method = "PUT"};
    assert_int_equal(fo_hdrs_build(&h, &put, NULL, 1, 0), 0);
    assert_string_equal(joined(&h), "X-Timeout-Ms: 1|Accept: application/json"
                                    "|User-Agent: fanout/" FO_VERSION "|Content-Type:|Expect:");
    fo_hdrs_free(&h);
    assert_null(fo_hdrs_list(&h));
}

static void test_timeout_only_shrinks(void **state)
{
    (void)state;
    struct fo_hdrs h;
    fo_hdrs_init(&h);
    struct fo_call call = {0};
    assert_int_equal(fo_hdrs_build(&h, &call, NULL, 1500, 0), 0);
    fo_hdrs_set_timeout(&h, 999);
    assert_string_equal(fo_hdrs_list(&h)->data, "X-Timeout-Ms: 999");
    fo_hdrs_set_timeout(&h, 1);
    assert_string_equal(fo_hdrs_list(&h)->data, "X-Timeout-Ms: 1");
    fo_hdrs_set_timeout(&h, 10); /* Longer than the line: left as it is. */
    assert_string_equal(fo_hdrs_list(&h)->data, "X-Timeout-Ms: 1");
    assert_string_equal(fo_hdrs_list(&h)->next->data, "Accept: application/json");
    fo_hdrs_free(&h);
}

static void test_storage_is_kept(void **state)
{
    (void)state;
    struct fo_hdrs h;
    fo_hdrs_init(&h);
    struct fo_call call = {0};
    assert_int_equal(fo_hdrs_build(&h, &call, "abc", 100, 0), 0);
    struct curl_slist *nodes = fo_hdrs_list(&h);
    const char *text = nodes->data;
    fo_hdrs_clear(&h);
    assert_null(fo_hdrs_list(&h));
    assert_int_equal(fo_hdrs_build(&h, &call, "xyz", 200, 0), 0);
    assert_ptr_equal(fo_hdrs_list(&h), nodes); /* Same arrays: nothing allocated. */
    assert_ptr_equal(fo_hdrs_list(&h)->data, text);
    assert_string_equal(joined(&h), "X-Timeout-Ms: 200|X-Request-Id: xyz|Accept: application/json"
                                    "|User-Agent: fanout/" FO_VERSION);
    /* Many lines: the arrays grow and every link is right. */
    static char bufs[100][32];
    const char *many[100];
    for (int i = 0; i < 100; i++) {
        snprintf(bufs[i], sizeof bufs[i], "X-N%d: %d", i, i);
        many[i] = bufs[i];
    }
    struct fo_call wide = {.headers = many, .nheaders = 100};
    assert_int_equal(fo_hdrs_build(&h, &wide, NULL, 5, 0), 0);
    int n = 0;
    for (struct curl_slist *l = fo_hdrs_list(&h); l; l = l->next, n++)
        if (n >= 1 && n <= 100) {
            char want[32];
            snprintf(want, sizeof want, "X-N%d: %d", n - 1, n - 1);
            assert_string_equal(l->data, want);
        }
    assert_int_equal(n, 103);
    fo_hdrs_clear(&h); /* Past what is kept: given back, still usable. */
    assert_int_equal(fo_hdrs_build(&h, &call, NULL, 3, 0), 0);
    assert_string_equal(fo_hdrs_list(&h)->data, "X-Timeout-Ms: 3");
    fo_hdrs_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_timeout_only_shrinks),
        cmocka_unit_test(test_storage_is_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
