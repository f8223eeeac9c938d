/* Host-side diagnostics on stderr, filtered by --log-level. */
#ifndef VMM_LOG_H
#define VMM_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* "error", "warn", "info" or "debug"; returns 0 or -EINVAL. */
int log_parse_level(const char *s, enum log_level *out);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
/* Always shown, whatever --log-level says: what the user asked for and must see (the path of a
 * pty to attach to). Printed as "vmm: message", like an error but not one. */
#define log_notice(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* Messages a guest can cause as often as it likes (a driver that resets a device and hands it a
 * bad ring in a loop) go through a limit, as Linux's printk_ratelimited: of each message (each
 * format) at most LOG_LIMIT_BURST lines per LOG_LIMIT_INTERVAL_S seconds per source (a device);
 * the next one let through says how many like it were held back, and log_limit_flush() says it
 * for the ones still held back when the source goes away. */
#define LOG_LIMIT_BURST      10
#define LOG_LIMIT_INTERVAL_S 5
#define LOG_LIMIT_SLOTS      8 /* messages tracked per source; the oldest makes room */

struct log_limit {
	struct log_limit_slot {
		const char *fmt; /* the message: its format string, by address */
		enum log_level level;
		unsigned long long start_ns; /* the interval under way */
		unsigned printed, suppressed;
		char last[160]; /* the last one held back, for the count said at flush */
	} slot[LOG_LIMIT_SLOTS];
};

void log_limited(struct log_limit *l, enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Says, for each message of l, how many were held back since the last one shown; then forgets. */
void log_limit_flush(struct log_limit *l);

#endif
