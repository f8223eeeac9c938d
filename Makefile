# vmm: a small KVM virtual machine monitor. `make help` lists the targets.
CC      ?= gcc
BUILD   ?= build
VERSION := 0.1.0
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wshadow -Wformat=2 -Werror=implicit-function-declaration \
	   -D_GNU_SOURCE -DVMM_VERSION='"$(VERSION)"' -Ivmm -MMD -MP
FDT_LIB ?= -lfdt
LDLIBS  += -linih -luring -lseccomp -lcap-ng -lmicrohttpd -ljansson $(FDT_LIB) -lpthread
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# One architecture's directory is built in: vmm/arch/$(ARCH)/, from the compiler's target.
ARCH      ?= $(patsubst x86_64,x86,$(patsubst aarch64,arm64,$(firstword $(subst -, ,$(shell $(CC) -dumpmachine)))))
SRCS      := $(shell find vmm -name '*.c' -not -path 'vmm/arch/*' | sort) $(sort $(wildcard vmm/arch/$(ARCH)/*.c))
# The arm64 machine description, Image checks and GPIO controller are plain code: unit-tested on
# every host.
PORTABLE  := vmm/arch/arm64/fdt.c vmm/arch/arm64/image.c vmm/arch/arm64/pl061.c
LIB_SRCS  := $(sort $(filter-out vmm/main.c,$(SRCS)) $(PORTABLE))
OBJS      := $(SRCS:%.c=$(BUILD)/obj/%.o)
SAN_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/san/%.o)
# Unit tests of x86's own code (its boot protocol, CPUID, platform devices, ACPI and MP tables in
# x86's memory map, which guest memory follows only on x86; the firmware guests' rings with their
# x86 barriers): on x86 only.
X86_TESTS := test_acpi test_boot test_cpuid test_fw_rings test_mptable test_platform
UNIT_SRCS := $(filter-out $(if $(filter-out x86,$(ARCH)),$(X86_TESTS:%=tests/unit/%.c)), \
	       $(sort $(wildcard tests/unit/test_*.c)))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%)
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(sort $(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/fuzzobj/%.o)
REPLAYS    := $(FUZZ_NAMES:%=$(BUILD)/fuzz/replay_%)
FUZZ_CC    ?= clang
FUZZ_TIME  ?= 60

.PHONY: all help check check-unit check-guest cross-arm64 fuzz run clean install fmt
# The freestanding test guests are x86 programs (port I/O, 64-bit x86 entry): built on x86 only.
FIRMWARE  := $(if $(filter x86,$(ARCH)),$(BUILD)/firmware/hello.elf $(BUILD)/firmware/virtio-test.elf)
all: $(BUILD)/vmm $(FIRMWARE)

help:
	@echo "make              build $(BUILD)/vmm and the firmware test guests"
	@echo "make run          boot a small default Debian guest to a shell (installs what it needs as root)"
	@echo "make check        unit tests (ASan/UBSan) and guest tests (nested under QEMU without /dev/kvm)"
	@echo "make check-unit   unit tests only"
	@echo "make check-guest  guest tests only"
	@echo "make cross-arm64  build $(BUILD)/arm64/vmm with Debian's arm64 cross compiler"
	@echo "make fuzz         run each libFuzzer target for FUZZ_TIME seconds (default 60; needs clang)"
	@echo "make install      install vmm to \$$(PREFIX)/bin (default /usr/local)"
	@echo "make fmt          clang-format the sources"
	@echo "make clean        remove $(BUILD)/"

$(BUILD)/vmm: $(OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(filter %.c %.o,$^) $(LDLIBS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/san/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SAN) -c -o $@ $<

$(BUILD)/unit/%: tests/unit/%.c $(SAN_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SAN) -o $@ $(filter %.c %.o,$^) $(LDLIBS) -lcmocka
# Checks docs/virtio-reference.md against the devices; it makes a network device with several
# queue pairs on a stand-in tap, whose queues it attaches and detaches itself, and a socket device
# on a stand-in /dev/vhost-vsock.
$(BUILD)/unit/test_features_doc: LDLIBS += -Wl,--wrap=tap_enable_queue -Wl,--wrap=ioctl
# The vhost plumbing against a stand-in kernel: its ioctls are answered by the test.
$(BUILD)/unit/test_vhost: LDLIBS += -Wl,--wrap=ioctl
$(BUILD)/unit/test_virtio_vsock: LDLIBS += -Wl,--wrap=ioctl

# libFuzzer targets: tests/fuzz/fuzz_<name>.c, built with clang against the vmm objects. `make fuzz`
# starts from tests/fuzz/corpus/<name>/ and keeps what it finds in $(BUILD)/fuzz/corpus/<name>/.
$(BUILD)/fuzzobj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CFLAGS) $(SAN) -fsanitize=fuzzer-no-link -c -o $@ $<

# A harness is compiled with its link (no .d of its own): any header it may include rebuilds it.
FUZZ_HDRS := tests/fuzz/fuzz.h $(shell find vmm -name '*.h')
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_HDRS) $(FUZZ_OBJS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CFLAGS) $(SAN) -fsanitize=fuzzer -o $@ $(filter %.c %.o,$^) $(LDLIBS)

# The same target with a plain main() that runs the files it is given: gcc, no clang needed.
$(BUILD)/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(FUZZ_HDRS) $(SAN_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SAN) -o $@ $(filter %.c %.o,$^) $(LDLIBS)

fuzz: $(FUZZ_NAMES:%=$(BUILD)/fuzz/fuzz_%)
	@set -e; for n in $(FUZZ_NAMES); do mkdir -p $(BUILD)/fuzz/corpus/$$n; \
		$(BUILD)/fuzz/fuzz_$$n -max_total_time=$(FUZZ_TIME) -max_len=16384 \
		-artifact_prefix=$(BUILD)/fuzz/$$n- $(BUILD)/fuzz/corpus/$$n \
		tests/fuzz/corpus/$$n; done

# The freestanding test guests: built with the host compiler, no libc, entered in 64-bit mode.
# Each firmware/NAME.c is one program; the library in firmware/lib/ and firmware/virtio/ is linked
# into those that use it, and --gc-sections leaves out what one does not.
FW_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Wno-unused-parameter -ffreestanding -fno-pic -fno-pie \
	     -mno-red-zone -mgeneral-regs-only -fno-stack-protector -fcf-protection=none \
	     -ffunction-sections -fdata-sections -Ifirmware -MMD -MP
FW_LIB_OBJS := $(patsubst %.c,$(BUILD)/fwobj/%.o,$(sort $(wildcard firmware/lib/*.c firmware/virtio/*.c)))
FW_OBJS     := $(patsubst %.c,$(BUILD)/fwobj/%.o,$(wildcard firmware/*.c)) $(FW_LIB_OBJS)

$(BUILD)/fwobj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(FW_CFLAGS) -c -o $@ $<

$(BUILD)/firmware/virtio-test.elf: $(FW_LIB_OBJS)

$(BUILD)/firmware/%.elf: $(BUILD)/fwobj/firmware/%.o firmware/firmware.ld
	@mkdir -p $(@D)
	$(CC) -nostdlib -static -no-pie -Wl,-T,firmware/firmware.ld -Wl,--gc-sections \
		-Wl,--build-id=none -o $@ $(filter %.o,$^)

# test_fw_rings: the firmware's rings against vmm's device side. The two cannot share a translation
# unit (each has a virtio/virtqueue.h), so the firmware's ring code is built for the host with
# -Ifirmware, the test too, and the device side is reached through tests/unit/fw_device.c.
FW_HOST_OBJS := $(patsubst %.c,$(BUILD)/fwhost/%.o,$(addprefix firmware/virtio/,virtqueue.c split.c packed.c))
FW_HOST_CFLAGS = $(filter-out -Ivmm,$(CFLAGS)) $(SAN) -Ifirmware

$(BUILD)/fwhost/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(FW_HOST_CFLAGS) -c -o $@ $<

$(BUILD)/unit/test_fw_rings: tests/unit/test_fw_rings.c $(FW_HOST_OBJS) $(BUILD)/san/tests/unit/fw_device.o \
			     $(BUILD)/san/vmm/virtio/virtqueue.o $(BUILD)/san/vmm/memory.o
	@mkdir -p $(@D)
	$(CC) $(FW_HOST_CFLAGS) -o $@ $(filter %.c %.o,$^) -lcmocka

check-unit: $(UNIT_BINS) $(REPLAYS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; ASAN_OPTIONS=detect_leaks=1 $$t; done
	@set -e; for n in $(FUZZ_NAMES); do echo "== replay tests/fuzz/corpus/$$n"; \
		ASAN_OPTIONS=detect_leaks=1 $(BUILD)/fuzz/replay_$$n tests/fuzz/corpus/$$n/*; done

check-guest: all $(if $(filter x86,$(ARCH)),cross-arm64)
	tests/guest/run-all.sh

# vmm for arm64 from an x86 machine: Debian's cross compiler and the arm64 builds of the libraries
# (multiarch: tests/deps.sh installs them). libfdt-dev cannot be installed for both architectures
# at once, so the arm64 library is linked by its file name.
ARM64_CC ?= aarch64-linux-gnu-gcc
cross-arm64:
	$(MAKE) --no-print-directory CC=$(ARM64_CC) BUILD=$(BUILD)/arm64 FDT_LIB=-l:libfdt.so.1 $(BUILD)/arm64/vmm

# One after the other, so that the guest tests' "N passed, N failed" is the last line.
check:
	$(MAKE) --no-print-directory check-unit
	$(MAKE) --no-print-directory check-guest

run: all
	tests/guest/make-run.sh

PREFIX ?= /usr/local
install: $(BUILD)/vmm
	install -D -m 0755 $(BUILD)/vmm $(DESTDIR)$(PREFIX)/bin/vmm

fmt:
	clang-format -i $(SRCS) $(shell find vmm tests/unit firmware -name '*.h' -o -name 'test_*.c')

clean:
	rm -rf $(BUILD)

# The sanitizer objects are only pattern-rule prerequisites: keep make from deleting them.
.SECONDARY: $(SAN_OBJS) $(FUZZ_OBJS) $(FW_OBJS) $(FW_HOST_OBJS) $(BUILD)/san/tests/unit/fw_device.o

-include $(OBJS:.o=.d) $(SAN_OBJS:.o=.d) $(FUZZ_OBJS:.o=.d) $(UNIT_BINS:=.d) $(FW_OBJS:.o=.d) \
	   $(FW_HOST_OBJS:.o=.d) $(BUILD)/san/tests/unit/fw_device.d
