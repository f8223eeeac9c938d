#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum log_level current = LOG_WARN;
static const char *const names[] = { "error", "warn", "info", "debug" };

void log_set_level(enum log_level level)
{
	current = level;
}

enum log_level log_get_level(void)
{
	return current;
}

int log_parse_level(const char *s, enum log_level *out)
{
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(s, names[i])) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* "vmm: level: " and the message, as one line. */
static void emit(enum log_level level, const char *msg, const char *suffix)
{
	/* One write per message, so lines from several threads do not interleave. The console may
	 * have the terminal in raw mode, hence the explicit carriage return. */
	fprintf(stderr, "vmm: %s%s%s%s\r\n", level == LOG_ERROR ? "" : names[level],
		level == LOG_ERROR ? "" : ": ", msg, suffix);
}

#define FORMAT(buf, fmt)                                                                           \
	do {                                                                                       \
		va_list ap;                                                                        \
                                                                                                   \
		va_start(ap, fmt);                                                                 \
		vsnprintf(buf, sizeof(buf), fmt, ap);                                              \
		va_end(ap);                                                                        \
	} while (0)

void log_msg(enum log_level level, const char *fmt, ...)
{
	char buf[1024];

	if (level > current)
		return;
	FORMAT(buf, fmt);
	emit(level, buf, "");
}

static pthread_mutex_t limit_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

/* The last message held back, with how many there were; the slot is then free. */
static void slot_flush(struct log_limit_slot *s)
{
	if (s->suppressed) {
		char note[80];

		snprintf(note, sizeof(note), " (the last of %u like it not shown)", s->suppressed);
		emit(s->level, s->last, note);
	}
	memset(s, 0, sizeof(*s));
}

void log_limited(struct log_limit *l, enum log_level level, const char *fmt, ...)
{
	unsigned long long now = now_ns();
	struct log_limit_slot *s = NULL, *oldest = &l->slot[0];
	char buf[1024], note[80] = "";

	if (level > current)
		return;
	FORMAT(buf, fmt);
	pthread_mutex_lock(&limit_lock);
	for (unsigned i = 0; i < LOG_LIMIT_SLOTS && !s; i++) {
		if (l->slot[i].fmt == fmt)
			s = &l->slot[i];
		else if (l->slot[i].start_ns < oldest->start_ns)
			oldest = &l->slot[i];
	}
	if (!s) {
		s = oldest;
		slot_flush(s);
		*s = (struct log_limit_slot){ .fmt = fmt, .level = level, .start_ns = now };
	}
	if (now - s->start_ns >= LOG_LIMIT_INTERVAL_S * 1000000000ULL) {
		if (s->suppressed)
			snprintf(note, sizeof(note), " (%u like it not shown in the last %llu s)",
				 s->suppressed, (now - s->start_ns) / 1000000000ULL);
		s->start_ns = now;
		s->printed = s->suppressed = 0;
	}
	if (s->printed < LOG_LIMIT_BURST) {
		s->printed++;
		emit(level, buf, note);
	} else {
		s->suppressed++;
		s->level = level;
		size_t n = strnlen(buf, sizeof(s->last) - 1);

		memcpy(s->last, buf, n); /* its start is enough to say which message it was */
		s->last[n] = 0;
	}
	pthread_mutex_unlock(&limit_lock);
}

void log_limit_flush(struct log_limit *l)
{
	pthread_mutex_lock(&limit_lock);
	for (unsigned i = 0; i < LOG_LIMIT_SLOTS; i++)
		slot_flush(&l->slot[i]);
	pthread_mutex_unlock(&limit_lock);
}
