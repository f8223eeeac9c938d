#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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

void log_msg(enum log_level level, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	if (level > current)
		return;
	n = snprintf(buf, sizeof(buf), "vmm: %s%s", level == LOG_ERROR ? "" : names[level],
		     level == LOG_ERROR ? "" : ": ");
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	/* One write per message, so lines from several threads do not interleave. The console may
	 * have the terminal in raw mode, hence the explicit carriage return. */
	fprintf(stderr, "%s\r\n", buf);
}
