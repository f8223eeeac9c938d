/* The VM description: one struct, filled from the config file and then the command line. */
#ifndef VMM_CONFIG_H
#define VMM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "log.h"

#define CONFIG_DEFAULT_CMDLINE "console=ttyS0"
#define CONFIG_DEFAULT_MEMORY  (512ULL << 20)
#define CONFIG_MIN_MEMORY      (16ULL << 20)
#define CONFIG_MAX_MEMORY      (1ULL << 40)
#define CONFIG_MAX_CPUS        254 /* xAPIC IDs in the MADT; KVM's own limit is checked later */

enum serial_mode { SERIAL_STDIO, SERIAL_FILE, SERIAL_NONE };

struct vm_config {
	char *kernel;  /* paths are as given on the command line, or made relative to the config */
	char *initrd;  /* file's directory when they came from one; NULL when unset */
	char *cmdline; /* never NULL after config_parse */
	unsigned cpus;
	uint64_t memory;
	enum serial_mode serial;
	char *serial_path;
	unsigned timeout; /* seconds; 0 means none */
	enum log_level log_level;
	bool help, version; /* --help / --version: main prints and exits 0 */
};

/* Fills cfg from argv (and the --config file it names, which argv then overrides). On bad input
 * prints one message naming the option, or the file and line, and returns -EINVAL: main exits 2. */
int config_parse(struct vm_config *cfg, int argc, char **argv);
void config_free(struct vm_config *cfg);
/* Sizes like 512M, 2G, 4096, 64K: 0 or -EINVAL (also on overflow). */
int config_parse_size(const char *s, uint64_t *out);
/* The text `vmm --help` prints. */
const char *config_usage(void);

/* One item of a device option's value, "key=value,key=value,word" (e.g. --serial file=PATH, later
 * --disk path=x,readonly=on). */
struct config_subopt {
	const char *key;
	const char *value; /* NULL for a bare word ("stdio"); "" for "key=" */
};
/* Splits s at commas (",," is a literal comma) and each item at its first '='. On success returns
 * the number of items (>= 1) and sets *items to one allocation the caller frees with free(); the
 * strings live inside it. -EINVAL for an empty item or key (this prints nothing: the caller names
 * the option), -ENOMEM. */
int config_subopts_split(const char *s, struct config_subopt **items);

#endif
