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

#endif
