/*
 * Run inside the emulated Arm64 host (static, aarch64): what the L1 kernel's KVM says about the WFx exit.
 *
 * Built by tests/emuhost/test_kernel.py with -DWFX_CAP=... -DWFX_EXIT=... (cosim.kvm._arm64's numbers)
 * and -DOTHER_CAP=... (the seed's). Prints "probe: key=value" lines and ends with "probe: done".
 * With the capability enabled it runs a one-vCPU guest, `wfi; str xzr, [x1]`, and checks the port's
 * semantics: a WFI with nothing pending exits with WFX_EXIT, PC left on it, ESR EC 0x01 and ISS WFI;
 * it exits again when run again; once the IRQ line is raised (masked by PSTATE, still a wake-up
 * event) the WFI completes in the kernel and the store exits as MMIO at PC 4.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#define MMIO_ADDR 0x100000UL

static int fail(const char *what)
{
	printf("probe: error=%s: %s\n", what, strerror(errno));
	printf("probe: done\n");
	return 1;
}

static int set_reg(int vcpu, uint64_t id, uint64_t value)
{
	struct kvm_one_reg reg = { .id = id, .addr = (uint64_t)(uintptr_t)&value };
	return ioctl(vcpu, KVM_SET_ONE_REG, &reg);
}

static uint64_t get_reg(int vcpu, uint64_t id)
{
	uint64_t value = ~0ULL;
	struct kvm_one_reg reg = { .id = id, .addr = (uint64_t)(uintptr_t)&value };
	ioctl(vcpu, KVM_GET_ONE_REG, &reg);
	return value;
}

#define CORE_REG(field) (KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | \
			 (offsetof(struct kvm_regs, field) / sizeof(uint32_t)))

static void report_run(int vcpu, struct kvm_run *run, const char *name)
{
	/* kvm_run.wfx.esr sits at the start of the exit union, where mmio does. */
	uint64_t esr = *(uint64_t *)((char *)run + offsetof(struct kvm_run, mmio));

	printf("probe: %s_exit=%u\n", name, run->exit_reason);
	printf("probe: %s_pc=%llu\n", name, (unsigned long long)get_reg(vcpu, CORE_REG(regs.pc)));
	if (run->exit_reason == WFX_EXIT)
		printf("probe: %s_esr=%#llx\n", name, (unsigned long long)esr);
	if (run->exit_reason == KVM_EXIT_MMIO)
		printf("probe: %s_mmio=%#llx\n", name, (unsigned long long)run->mmio.phys_addr);
}

int main(void)
{
	static const uint32_t code[] = { 0xd503207f /* wfi */, 0xf900003f /* str xzr, [x1] */ };
	struct kvm_vcpu_init init;
	struct kvm_enable_cap cap = { .cap = WFX_CAP };
	struct kvm_irq_level irq;
	struct kvm_run *run;
	int kvm, vm, vcpu, size;
	void *ram;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		return fail("open /dev/kvm");
	printf("probe: api=%d\n", ioctl(kvm, KVM_GET_API_VERSION, 0));
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		return fail("KVM_CREATE_VM");
	printf("probe: check_wfx=%d\n", ioctl(vm, KVM_CHECK_EXTENSION, WFX_CAP));
	printf("probe: check_other=%d\n", ioctl(vm, KVM_CHECK_EXTENSION, OTHER_CAP));
	printf("probe: check_user_irq=%d\n", ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_ARM_USER_IRQ));
	if (ioctl(vm, KVM_ENABLE_CAP, &cap) < 0) {
		printf("probe: enable_wfx=%d\n", -errno);
		printf("probe: done\n");
		return 0;
	}
	printf("probe: enable_wfx=0\n");

	ram = mmap(NULL, 0x10000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ram == MAP_FAILED)
		return fail("mmap");
	memcpy(ram, code, sizeof(code));
	struct kvm_userspace_memory_region slot = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = 0x10000, .userspace_addr = (uintptr_t)ram,
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
		return fail("KVM_SET_USER_MEMORY_REGION");
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		return fail("KVM_CREATE_VCPU");
	if (ioctl(vm, KVM_ARM_PREFERRED_TARGET, &init) < 0 || ioctl(vcpu, KVM_ARM_VCPU_INIT, &init) < 0)
		return fail("KVM_ARM_VCPU_INIT");
	size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		return fail("mmap kvm_run");
	if (set_reg(vcpu, CORE_REG(regs.pc), 0) < 0 || set_reg(vcpu, CORE_REG(regs.regs[1]), MMIO_ADDR) < 0)
		return fail("KVM_SET_ONE_REG");

	if (ioctl(vcpu, KVM_RUN, 0) < 0)
		return fail("KVM_RUN 1");
	report_run(vcpu, run, "first");
	if (ioctl(vcpu, KVM_RUN, 0) < 0)
		return fail("KVM_RUN 2");
	report_run(vcpu, run, "again");

	irq.irq = (KVM_ARM_IRQ_TYPE_CPU << KVM_ARM_IRQ_TYPE_SHIFT) | KVM_ARM_IRQ_CPU_IRQ;
	irq.level = 1;
	if (ioctl(vm, KVM_IRQ_LINE, &irq) < 0)
		return fail("KVM_IRQ_LINE");
	if (ioctl(vcpu, KVM_RUN, 0) < 0)
		return fail("KVM_RUN 3");
	report_run(vcpu, run, "pending");
	printf("probe: done\n");
	return 0;
}
