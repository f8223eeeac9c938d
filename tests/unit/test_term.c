/* The console escape: Ctrl-A x quits, Ctrl-A Ctrl-A sends one Ctrl-A, other bytes pass through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "backend/term.h"

struct sink {
	uint8_t buf[64];
	size_t len;
	int quits;
};

static int sink_input(void *opaque, const uint8_t *buf, size_t len)
{
	struct sink *s = opaque;

	assert_true(s->len + len <= sizeof(s->buf));
	memcpy(s->buf + s->len, buf, len);
	s->len += len;
	return 0;
}

static void sink_quit(void *opaque)
{
	((struct sink *)opaque)->quits++;
}

static void make_term(struct term *t, struct sink *s, bool tty)
{
	memset(s, 0, sizeof(*s));
	memset(t, 0, sizeof(*t));
	t->is_tty = tty;
	t->input = sink_input;
	t->quit = sink_quit;
	t->opaque = s;
}

static void plain_bytes_pass(void **state)
{
	struct term t;
	struct sink s;

	make_term(&t, &s, true);
	assert_int_equal(term_feed(&t, (const uint8_t *)"ls\r", 3), 0);
	assert_int_equal(s.len, 3);
	assert_memory_equal(s.buf, "ls\r", 3);
}

static void ctrl_a_x_quits(void **state)
{
	struct term t;
	struct sink s;

	make_term(&t, &s, true);
	assert_int_equal(term_feed(&t, (const uint8_t *)"ab\001xcd", 6), 1);
	assert_int_equal(s.quits, 1);
	assert_int_equal(s.len, 2);
	assert_memory_equal(s.buf, "ab", 2);
}

static void escape_split_across_reads(void **state)
{
	struct term t;
	struct sink s;

	make_term(&t, &s, true);
	assert_int_equal(term_feed(&t, (const uint8_t *)"a\001", 2), 0);
	assert_int_equal(term_feed(&t, (const uint8_t *)"\001b", 2), 0);
	assert_int_equal(term_feed(&t, (const uint8_t *)"\001", 1), 0);
	assert_int_equal(term_feed(&t, (const uint8_t *)"q", 1), 0);
	assert_int_equal(s.quits, 0);
	assert_int_equal(s.len, 5);
	assert_memory_equal(s.buf, "a\001b\001q", 5);
}

static void no_escapes_without_a_terminal(void **state)
{
	struct term t;
	struct sink s;

	make_term(&t, &s, false);
	assert_int_equal(term_feed(&t, (const uint8_t *)"\001x", 2), 0);
	assert_int_equal(s.quits, 0);
	assert_int_equal(s.len, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(plain_bytes_pass),
		cmocka_unit_test(ctrl_a_x_quits),
		cmocka_unit_test(escape_split_across_reads),
		cmocka_unit_test(no_escapes_without_a_terminal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
