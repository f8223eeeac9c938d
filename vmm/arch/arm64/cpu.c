/* arm64 vCPUs: KVM_ARM_VCPU_INIT with PSCI 0.2 (vCPUs other than 0 start powered off, until the
 * guest's PSCI CPU_ON), and vCPU 0's boot registers as Documentation/arch/arm64/booting.rst asks:
 * EL1h with every exception masked, x0 the device tree, x1-x3 zero, pc the kernel. */
#include "arch.h"
#include "cpu/vcpu.h"
#include "log.h"
#include "vm.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define CORE_REG(field)                                                                           \
	(KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE |                                    \
	 (offsetof(struct kvm_regs, field) / sizeof(uint32_t)))
#define SYS_REG(op0, op1, crn, crm, op2)                                                          \
	(KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM64_SYSREG |                                \
	 ARM64_SYS_REG_SHIFT_MASK(op0, OP0) | ARM64_SYS_REG_SHIFT_MASK(op1, OP1) |                \
	 ARM64_SYS_REG_SHIFT_MASK(crn, CRN) | ARM64_SYS_REG_SHIFT_MASK(crm, CRM) |                \
	 ARM64_SYS_REG_SHIFT_MASK(op2, OP2))
#define REG_ESR_EL1 SYS_REG(3, 0, 5, 2, 0)
#define REG_FAR_EL1 SYS_REG(3, 0, 6, 0, 0)

#define BOOT_PSTATE (PSR_MODE_EL1h | PSR_D_BIT | PSR_A_BIT | PSR_I_BIT | PSR_F_BIT)

/* What a restart gives vCPU 0 again. */
struct vcpu_state {
	uint64_t pc, x0;
};

static int set_reg(struct vcpu *c, uint64_t id, uint64_t v)
{
	struct kvm_one_reg r = { .id = id, .addr = (uintptr_t)&v };

	return ioctl(c->fd, KVM_SET_ONE_REG, &r) < 0 ? -errno : 0;
}

static int get_reg(struct vcpu *c, uint64_t id, uint64_t *v)
{
	struct kvm_one_reg r = { .id = id, .addr = (uintptr_t)v };

	return ioctl(c->fd, KVM_GET_ONE_REG, &r) < 0 ? -errno : 0;
}

/* KVM_ARM_VCPU_INIT (again, for a restart: it resets the vCPU), then vCPU 0's registers. */
static int init(struct vcpu *c, uint64_t pc, uint64_t x0)
{
	struct kvm_vcpu_init in = c->vm->arch.init;
	int ret;

	if (c->index)
		in.features[0] |= 1U << KVM_ARM_VCPU_POWER_OFF; /* until PSCI CPU_ON */
	if (ioctl(c->fd, KVM_ARM_VCPU_INIT, &in) < 0)
		return -errno;
	if (c->index)
		return 0;
	if ((ret = set_reg(c, CORE_REG(regs.pstate), BOOT_PSTATE)) ||
	    (ret = set_reg(c, CORE_REG(regs.regs[0]), x0)) ||
	    (ret = set_reg(c, CORE_REG(regs.regs[1]), 0)) ||
	    (ret = set_reg(c, CORE_REG(regs.regs[2]), 0)) ||
	    (ret = set_reg(c, CORE_REG(regs.regs[3]), 0)) ||
	    (ret = set_reg(c, CORE_REG(regs.pc), pc)))
		return ret;
	return 0;
}

int arch_vcpu_init(struct vcpu *c, const struct boot_info *boot)
{
	return init(c, boot->entry, boot->arg);
}

int arch_vcpu_keep(struct vcpu *c)
{
	struct vcpu_state *st = calloc(1, sizeof(*st));
	int ret;

	if (!st)
		return -ENOMEM;
	if (c->index == 0 && ((ret = get_reg(c, CORE_REG(regs.pc), &st->pc)) ||
			      (ret = get_reg(c, CORE_REG(regs.regs[0]), &st->x0)))) {
		free(st);
		return ret;
	}
	c->initial = st;
	return 0;
}

int arch_vcpu_reset(struct vcpu *c)
{
	int ret = init(c, c->initial->pc, c->initial->x0);

	if (ret) {
		log_error("vcpu%u: cannot reset for the restart: %s", c->index, strerror(-ret));
		return -1;
	}
	return 0;
}

void arch_vcpu_dump(struct vcpu *c, bool error)
{
	uint64_t pc = 0, sp = 0, pstate = 0, lr = 0, esr = 0, far = 0;

	get_reg(c, CORE_REG(regs.pc), &pc);
	get_reg(c, CORE_REG(regs.pstate), &pstate);
	get_reg(c, CORE_REG(sp_el1), &sp);
	get_reg(c, CORE_REG(regs.regs[30]), &lr);
	get_reg(c, REG_ESR_EL1, &esr);
	get_reg(c, REG_FAR_EL1, &far);
	log_msg(error ? LOG_ERROR : LOG_INFO,
		"vcpu%u: pc %#llx pstate %#llx sp_el1 %#llx lr %#llx esr_el1 %#llx far_el1 %#llx",
		c->index, (unsigned long long)pc, (unsigned long long)pstate,
		(unsigned long long)sp, (unsigned long long)lr, (unsigned long long)esr,
		(unsigned long long)far);
}

/* Nothing like x86's NMI to make a hung arm64 guest show its stack. */
void arch_vcpu_timeout(struct vcpu *c)
{
}
