/* x86 vCPUs: CPUID (with the topology of --cpus), MSRs, the FPU and LAPIC, 64-bit boot registers,
 * the state a restart puts back, and the registers a report shows. */
#include "arch.h"
#include "arch/x86/cpu.h"
#include "cpu/vcpu.h"
#include "log.h"
#include "vm.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>


#define MSR_IA32_SYSENTER_CS  0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE  0x1a0
#define MSR_MTRR_DEF_TYPE     0x2ff
#define MSR_STAR              0xc0000081
#define MSR_LSTAR             0xc0000082
#define MSR_CSTAR             0xc0000083
#define MSR_SYSCALL_MASK      0xc0000084
#define MSR_KERNEL_GS_BASE    0xc0000102

#define MISC_ENABLE_FAST_STRING 1ULL
#define MTRR_ENABLE_WB          ((1ULL << 11) | 6) /* MTRRs on, default type write-back */

#define CR0_PE 0x1ULL
#define CR0_MP 0x2ULL
#define CR0_ET 0x10ULL
#define CR0_NE 0x20ULL
#define CR0_WP 0x10000ULL
#define CR0_AM 0x40000ULL
#define CR0_PG 0x80000000ULL
#define CR4_PAE 0x20ULL
#define EFER_LME 0x100ULL
#define EFER_LMA 0x400ULL

#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_MODE_NMI    4
#define APIC_MODE_EXTINT 7

struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn &&
		    (!(c->entries[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || c->entries[i].index == idx))
			return &c->entries[i];
	return NULL;
}

static unsigned order_base_2(unsigned n)
{
	unsigned s = 0;

	while ((1U << s) < n)
		s++;
	return s;
}

/*
 * One socket, `count` cores, one thread each; APIC ID = vCPU index. Linux counts CPUs from the
 * MADT, but the scheduler's topology and some drivers read these leaves, so they must agree.
 */
void cpuid_set_topology(struct kvm_cpuid2 *cpuid, unsigned index, unsigned count)
{
	unsigned shift = order_base_2(count);
	struct kvm_cpuid_entry2 *e;

	if ((e = cpuid_find(cpuid, 1, 0))) {
		e->ebx = (e->ebx & 0xffff) | ((count & 0xff) << 16) | (index << 24);
		e->ecx |= 1U << 31; /* running under a hypervisor */
		if (count > 1)
			e->edx |= 1U << 28; /* HTT: the count in EBX[23:16] is valid */
		else
			e->edx &= ~(1U << 28);
	}
	for (uint32_t i = 0; i < cpuid->nent; i++) {
		e = &cpuid->entries[i];
		switch (e->function) {
		case 4: /* deterministic cache parameters: cores per package */
			if (e->eax & 0x1f)
				e->eax = (e->eax & 0x3fff) | ((((1U << shift) - 1) & 0x3f) << 26);
			break;
		case 0xb: /* extended topology: level 0 SMT, level 1 core, then invalid */
		case 0x1f:
			e->edx = index;
			if (e->index == 0) {
				e->eax = 0;
				e->ebx = 1;
				e->ecx = (1 << 8) | 0;
			} else if (e->index == 1) {
				e->eax = shift;
				e->ebx = count;
				e->ecx = (2 << 8) | 1;
			} else {
				e->eax = e->ebx = 0;
				e->ecx = e->index;
			}
			break;
		case 0x80000008: /* AMD: NC = cores - 1, ApicIdCoreIdSize */
			e->ecx = (e->ecx & ~0xf0ffU) | (shift << 12) | ((count - 1) & 0xff);
			break;
		}
	}
}

static int vcpu_set_cpuid(struct vcpu *c)
{
	struct kvm_cpuid2 *src = c->vm->arch.cpuid;
	size_t size = sizeof(*src) + src->nent * sizeof(src->entries[0]);
	struct kvm_cpuid2 *cpuid = malloc(size);
	int ret = 0;

	if (!cpuid)
		return -ENOMEM;
	memcpy(cpuid, src, size);
	cpuid_set_topology(cpuid, c->index, c->vm->ncpus);
	if (ioctl(c->fd, KVM_SET_CPUID2, cpuid) < 0)
		ret = -errno;
	free(cpuid);
	return ret;
}

/* What vcpu_set_msrs writes, and a restart writes again (vcpu_keep). */
static const struct kvm_msr_entry boot_msrs[] = {
	{ .index = MSR_IA32_SYSENTER_CS },  { .index = MSR_IA32_SYSENTER_ESP },
	{ .index = MSR_IA32_SYSENTER_EIP }, { .index = MSR_STAR },
	{ .index = MSR_LSTAR },		    { .index = MSR_CSTAR },
	{ .index = MSR_SYSCALL_MASK },	    { .index = MSR_KERNEL_GS_BASE },
	{ .index = MSR_IA32_MISC_ENABLE, .data = MISC_ENABLE_FAST_STRING },
	{ .index = MSR_MTRR_DEF_TYPE, .data = MTRR_ENABLE_WB },
};
#define NR_BOOT_MSRS (sizeof(boot_msrs) / sizeof(boot_msrs[0]))

static int vcpu_set_msrs(struct vcpu *c)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[NR_BOOT_MSRS];
	} msrs = { .hdr.nmsrs = NR_BOOT_MSRS };
	int ret;

	memcpy(msrs.e, boot_msrs, sizeof(boot_msrs));
	ret = ioctl(c->fd, KVM_SET_MSRS, &msrs);
	if (ret < 0)
		return -errno;
	/* KVM_SET_MSRS returns how many it set; a short count names the first one it refused. */
	if ((unsigned)ret != NR_BOOT_MSRS) {
		log_error("KVM refused MSR %#x", boot_msrs[ret].index);
		return -EINVAL;
	}
	return 0;
}

static int vcpu_set_lapic(struct vcpu *c)
{
	struct kvm_lapic_state lapic;
	uint32_t *lint0 = (uint32_t *)&lapic.regs[APIC_LVT_LINT0];
	uint32_t *lint1 = (uint32_t *)&lapic.regs[APIC_LVT_LINT1];

	if (ioctl(c->fd, KVM_GET_LAPIC, &lapic) < 0)
		return -errno;
	/* LINT0 takes the legacy PIC's output (ExtINT), LINT1 the NMI line, as on a PC. */
	*lint0 = (*lint0 & ~0x700U) | (APIC_MODE_EXTINT << 8);
	*lint1 = (*lint1 & ~0x700U) | (APIC_MODE_NMI << 8);
	if (ioctl(c->fd, KVM_SET_LAPIC, &lapic) < 0)
		return -errno;
	return 0;
}

static int vcpu_set_fpu(struct vcpu *c)
{
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };

	return ioctl(c->fd, KVM_SET_FPU, &fpu) < 0 ? -errno : 0;
}

static struct kvm_segment seg_from_gdt(uint16_t selector)
{
	uint64_t d = boot_gdt_entry(selector >> 3);

	return (struct kvm_segment){
		.base = (uint32_t)(((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000)),
		.limit = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000)),
		.selector = selector,
		.type = (d >> 40) & 0xf,
		.present = (d >> 47) & 1,
		.dpl = (d >> 45) & 3,
		.db = (d >> 54) & 1,
		.s = (d >> 44) & 1,
		.l = (d >> 53) & 1,
		.g = (d >> 55) & 1,
	};
}

/* 64-bit mode with the identity map and GDT that boot_load wrote, as the Linux 64-bit boot
 * protocol wants: CS = 0x10, DS/ES/SS = 0x18, interrupts off, rsi = boot_params. */
static int vcpu_set_boot_regs(struct vcpu *c, const struct boot_info *boot)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = {
		.rflags = 0x2,
		.rip = boot->entry,
		.rsi = boot->arg,
		.rsp = boot->stack,
		.rbp = boot->stack,
	};

	if (ioctl(c->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	sregs.cs = seg_from_gdt(BOOT_GDT_CODE);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = seg_from_gdt(BOOT_GDT_DATA);
	sregs.gdt.base = BOOT_GDT_ADDR;
	sregs.gdt.limit = BOOT_GDT_ENTRIES * 8 - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG;
	sregs.cr3 = BOOT_PML4_ADDR;
	sregs.cr4 = CR4_PAE;
	sregs.efer = EFER_LME | EFER_LMA;
	if (ioctl(c->fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;
	if (ioctl(c->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}


int arch_vcpu_init(struct vcpu *c, const struct boot_info *boot)
{
	int ret;

	if ((ret = vcpu_set_cpuid(c)) || (ret = vcpu_set_msrs(c)) || (ret = vcpu_set_fpu(c)) ||
	    (ret = vcpu_set_lapic(c)))
		return ret;
	/* Only vCPU 0 (the BSP) boots; the others wait in KVM for INIT/SIPI from the guest. */
	if (c->index == 0)
		return vcpu_set_boot_regs(c, boot);
	return 0;
}

/* Logs (info) len bytes of guest memory at virtual address va, through the vCPU's page tables,
 * as bytes or as 64-bit words. Called on the vCPU's own thread. */
static void vcpu_dump_memory(struct vcpu *c, const char *what, uint64_t va, unsigned len,
			     bool words)
{
	struct kvm_translation t = { .linear_address = va };
	char line[8 + 128 * 3];
	const uint8_t *p;
	size_t n = 0;

	errno = 0;
	if (ioctl(c->fd, KVM_TRANSLATE, &t) < 0 || !t.valid) {
		log_info("vcpu%u: %s: %#llx is not mapped (%s)", c->index, what,
			 (unsigned long long)va, errno ? strerror(errno) : "KVM_TRANSLATE");
		return;
	}
	if ((t.physical_address & 4095) + len > 4096 ||
	    !(p = gmem_ptr(c->vm->mem, t.physical_address, len)))
		return;
	for (unsigned i = 0; i + (words ? 8 : 1) <= len && n < sizeof(line) - 20;
	     i += words ? 8 : 1) {
		uint64_t v;

		if (!words) {
			n += (size_t)snprintf(line + n, sizeof(line) - n, " %02x", p[i]);
			continue;
		}
		memcpy(&v, p + i, 8);
		n += (size_t)snprintf(line + n, sizeof(line) - n, " %llx", (unsigned long long)v);
	}
	log_info("vcpu%u: %s:%s", c->index, what, line);
}

/* Where the guest is: what a bug report needs when it dies in a way only KVM saw (error level),
 * or where it was when --timeout stopped it (info). */
static void vcpu_dump_at(struct vcpu *c, bool error)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	char line[200];

	if (ioctl(c->fd, KVM_GET_REGS, &r) < 0 || ioctl(c->fd, KVM_GET_SREGS, &s) < 0)
		return;
	snprintf(line, sizeof(line),
		 "rip %#llx rsp %#llx rflags %#llx cr0 %#llx cr3 %#llx cr4 %#llx efer %#llx",
		 (unsigned long long)r.rip, (unsigned long long)r.rsp, (unsigned long long)r.rflags,
		 (unsigned long long)s.cr0, (unsigned long long)s.cr3, (unsigned long long)s.cr4,
		 (unsigned long long)s.efer);
	if (error) {
		log_error("vcpu%u: %s", c->index, line);
		return;
	}
	log_info("vcpu%u: %s", c->index, line);
	vcpu_dump_memory(c, "code at rip", r.rip, 32, false);
	vcpu_dump_memory(c, "stack", r.rsp, 128, true);
}

void arch_vcpu_dump(struct vcpu *c, bool error)
{
	vcpu_dump_at(c, error);
}

/* vCPU 0 takes an NMI, which a Linux guest booted with unknown_nmi_panic answers with a panic
 * and its backtrace, even when it hangs with interrupts off. */
void arch_vcpu_timeout(struct vcpu *c)
{
	if (c->index == 0 && ioctl(c->fd, KVM_NMI, 0) < 0)
		log_warn("vcpu0: KVM_NMI: %s", strerror(errno));
}

/* MSRs a guest changes that a reset must put back beyond boot_msrs: the TSC, and KVM's
 * paravirtual ones, whose guest addresses would otherwise stay armed (kvmclock would go on
 * writing into the new boot's memory). Those the host's KVM lacks are skipped. */
static const uint32_t pv_msrs[] = {
	0x10,       /* TSC */
	0x11, 0x12, /* kvmclock, the first interface: wall clock, system time */
	0x4b564d00, 0x4b564d01, /* kvmclock: wall clock, system time */
	0x4b564d02, /* async page faults */
	0x4b564d03, /* steal time */
	0x4b564d04, /* PV EOI */
};

int arch_vcpu_keep(struct vcpu *c)
{
	struct vcpu_state *st = calloc(1, sizeof(*st));

	if (!st)
		return -ENOMEM;
	if (ioctl(c->fd, KVM_GET_REGS, &st->regs) < 0 || ioctl(c->fd, KVM_GET_SREGS, &st->sregs) < 0 ||
	    ioctl(c->fd, KVM_GET_FPU, &st->fpu) < 0 || ioctl(c->fd, KVM_GET_LAPIC, &st->lapic) < 0 ||
	    ioctl(c->fd, KVM_GET_MP_STATE, &st->mp) < 0 ||
	    ioctl(c->fd, KVM_GET_VCPU_EVENTS, &st->events) < 0) {
		int ret = -errno;
		free(st);
		return ret;
	}
	st->has_xcrs = ioctl(c->fd, KVM_GET_XCRS, &st->xcrs) == 0;
	_Static_assert(NR_BOOT_MSRS + sizeof(pv_msrs) / sizeof(pv_msrs[0]) <= VCPU_RESET_MSRS,
		       "VCPU_RESET_MSRS");
	memcpy(st->msrs.e, boot_msrs, sizeof(boot_msrs)); /* as vcpu_set_msrs left them */
	st->msrs.hdr.nmsrs = NR_BOOT_MSRS;
	for (unsigned i = 0; i < sizeof(pv_msrs) / sizeof(pv_msrs[0]); i++) {
		struct {
			struct kvm_msrs hdr;
			struct kvm_msr_entry e;
		} one = { .hdr.nmsrs = 1, .e.index = pv_msrs[i] };

		if (ioctl(c->fd, KVM_GET_MSRS, &one) == 1)
			st->msrs.e[st->msrs.hdr.nmsrs++] = one.e;
	}
	c->initial = st;
	return 0;
}

int arch_vcpu_reset(struct vcpu *c)
{
	struct vcpu_state *st = c->initial;

	if (ioctl(c->fd, KVM_SET_SREGS, &st->sregs) < 0 || ioctl(c->fd, KVM_SET_REGS, &st->regs) < 0 ||
	    ioctl(c->fd, KVM_SET_FPU, &st->fpu) < 0 ||
	    (st->has_xcrs && ioctl(c->fd, KVM_SET_XCRS, &st->xcrs) < 0) ||
	    ioctl(c->fd, KVM_SET_LAPIC, &st->lapic) < 0 ||
	    ioctl(c->fd, KVM_SET_MSRS, &st->msrs) != (int)st->msrs.hdr.nmsrs ||
	    ioctl(c->fd, KVM_SET_VCPU_EVENTS, &st->events) < 0 ||
	    ioctl(c->fd, KVM_SET_MP_STATE, &st->mp) < 0) {
		log_error("vcpu%u: cannot reset for the restart: %s", c->index, strerror(errno));
		return -1;
	}
	return 0;
}
