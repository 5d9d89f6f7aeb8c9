/* bpf — run-time assembler and bpf(2) loader for kvnet's eBPF programs; see bpf.h. */
#include "net/bpf.h"

#include "lib/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The licence string the kernel records. kvnet's programs call no GPL-only helper
 * (skb_load_bytes, skb_vlan_push/pop, redirect are open to every program). */
#define BPF_LICENSE "kvnet"
#define BPF_LOG_BUF 16384

static void fail(struct bpf_asm *a, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail(struct bpf_asm *a, int code, const char *fmt, ...)
{
	if (a->err)
		return;
	a->err = -code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(a->why, sizeof(a->why), fmt, ap);
	va_end(ap);
}

void bpf_asm_init(struct bpf_asm *a)
{
	a->n = 0;
	a->nfix = 0;
	a->err = 0;
	a->why[0] = 0;
	for (unsigned i = 0; i < BPF_ASM_LABELS; i++)
		a->label[i] = -1;
}

static struct bpf_insn *emit(struct bpf_asm *a, uint8_t code, int dst, int src, int16_t off,
			     int32_t imm)
{
	if (a->n >= BPF_ASM_MAX) {
		fail(a, E2BIG, "program longer than %d instructions", BPF_ASM_MAX);
		return NULL;
	}
	if (dst < 0 || dst > 10 || src < 0 || src > 10) {
		fail(a, EINVAL, "instruction %u: no register r%d / r%d", a->n, dst, src);
		return NULL;
	}
	struct bpf_insn *i = &a->insn[a->n++];
	*i = (struct bpf_insn){ .code = code, .dst_reg = (uint8_t)dst, .src_reg = (uint8_t)src,
				.off = off, .imm = imm };
	return i;
}

static void jump_to(struct bpf_asm *a, struct bpf_insn *i, unsigned label)
{
	if (!i)
		return;
	if (label >= BPF_ASM_LABELS) {
		fail(a, EINVAL, "instruction %u: label %u out of range", a->n - 1, label);
		return;
	}
	if (a->nfix >= BPF_ASM_FIXUPS) {
		fail(a, E2BIG, "more than %d jumps", BPF_ASM_FIXUPS);
		return;
	}
	a->fix[a->nfix].at = a->n - 1;
	a->fix[a->nfix].label = label;
	a->nfix++;
}

void bpf_mov_imm(struct bpf_asm *a, int dst, int32_t imm)
{
	emit(a, BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm);
}

void bpf_mov_reg(struct bpf_asm *a, int dst, int src)
{
	emit(a, BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0);
}

void bpf_alu_imm(struct bpf_asm *a, int op, int dst, int32_t imm)
{
	emit(a, (uint8_t)(BPF_ALU64 | op | BPF_K), dst, 0, 0, imm);
}

void bpf_alu_reg(struct bpf_asm *a, int op, int dst, int src)
{
	emit(a, (uint8_t)(BPF_ALU64 | op | BPF_X), dst, src, 0, 0);
}

void bpf_ldx(struct bpf_asm *a, int size, int dst, int src, int16_t off)
{
	emit(a, (uint8_t)(BPF_LDX | size | BPF_MEM), dst, src, off, 0);
}

void bpf_stx(struct bpf_asm *a, int size, int dst, int src, int16_t off)
{
	emit(a, (uint8_t)(BPF_STX | size | BPF_MEM), dst, src, off, 0);
}

void bpf_st_imm(struct bpf_asm *a, int size, int dst, int16_t off, int32_t imm)
{
	emit(a, (uint8_t)(BPF_ST | size | BPF_MEM), dst, 0, off, imm);
}

void bpf_jmp32_imm(struct bpf_asm *a, int op, int dst, int32_t imm, unsigned label)
{
	jump_to(a, emit(a, (uint8_t)(BPF_JMP32 | op | BPF_K), dst, 0, 0, imm), label);
}

void bpf_jmp_imm(struct bpf_asm *a, int op, int dst, int32_t imm, unsigned label)
{
	jump_to(a, emit(a, (uint8_t)(BPF_JMP | op | BPF_K), dst, 0, 0, imm), label);
}

void bpf_jmp_reg(struct bpf_asm *a, int op, int dst, int src, unsigned label)
{
	jump_to(a, emit(a, (uint8_t)(BPF_JMP | op | BPF_X), dst, src, 0, 0), label);
}

void bpf_ja(struct bpf_asm *a, unsigned label)
{
	jump_to(a, emit(a, BPF_JMP | BPF_JA, 0, 0, 0, 0), label);
}

void bpf_call(struct bpf_asm *a, int fn)
{
	emit(a, BPF_JMP | BPF_CALL, 0, 0, 0, fn);
}

void bpf_ret(struct bpf_asm *a, int32_t v)
{
	bpf_mov_imm(a, BPF_REG_0, v);
	bpf_exit(a);
}

void bpf_exit(struct bpf_asm *a)
{
	emit(a, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
}

void bpf_be16(struct bpf_asm *a, int dst)
{
	emit(a, BPF_ALU | BPF_END | BPF_TO_BE, dst, 0, 0, 16);
}

void bpf_label(struct bpf_asm *a, unsigned label)
{
	if (label >= BPF_ASM_LABELS)
		return fail(a, EINVAL, "label %u out of range", label);
	if (a->label[label] >= 0)
		return fail(a, EINVAL, "label %u placed twice", label);
	a->label[label] = (int)a->n;
}

int32_t bpf_imm_bytes(const uint8_t *p, size_t n)
{
	uint32_t v = 0;
	uint16_t h;
	if (n == 1)
		v = p[0];
	else if (n == 2)
		memcpy(&h, p, 2), v = h;
	else if (n == 4)
		memcpy(&v, p, 4);
	return (int32_t)v;
}

int bpf_asm_finish(struct bpf_asm *a, struct err *e)
{
	for (unsigned i = 0; i < a->nfix && !a->err; i++) {
		int to = a->label[a->fix[i].label];
		if (to < 0) {
			fail(a, EINVAL, "label %u jumped to but never placed", a->fix[i].label);
			break;
		}
		long off = (long)to - (long)a->fix[i].at - 1;
		if (off < INT16_MIN || off > INT16_MAX) {
			fail(a, ERANGE, "jump at %u to label %u out of range", a->fix[i].at,
			     a->fix[i].label);
			break;
		}
		a->insn[a->fix[i].at].off = (int16_t)off;
	}
	if (!a->err && a->n == 0)
		fail(a, EINVAL, "empty program");
	if (a->err)
		return err_setx(e, -a->err, "bpf: assembling: %s", a->why);
	a->nfix = 0; /* resolved; a second finish is a no-op */
	return 0;
}

static long sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

/* The last complete lines of the verifier log, at most cap-1 bytes. */
static const char *log_tail(const char *log, char *out, size_t cap)
{
	size_t n = strlen(log);
	while (n && (log[n - 1] == '\n' || log[n - 1] == ' '))
		n--;
	size_t start = n > cap - 1 ? n - (cap - 1) : 0;
	while (start && start < n && log[start - 1] != '\n')
		start++;
	size_t k = 0;
	for (size_t i = start; i < n && k + 1 < cap; i++)
		out[k++] = log[i] == '\n' ? '|' : log[i];
	out[k] = 0;
	return out;
}

int bpf_prog_load_cls(struct bpf_asm *a, const char *name, int *fd, struct err *e)
{
	int rc = bpf_asm_finish(a, e);
	if (rc < 0)
		return err_prefix(e, "program %s", name), rc;
	char vlog[BPF_LOG_BUF];
	union bpf_attr at;
	memset(&at, 0, sizeof(at));
	at.prog_type = BPF_PROG_TYPE_SCHED_CLS;
	at.insns = (uint64_t)(uintptr_t)a->insn;
	at.insn_cnt = a->n;
	at.license = (uint64_t)(uintptr_t)BPF_LICENSE;
	snprintf(at.prog_name, sizeof(at.prog_name), "%s", name);
	long r = sys_bpf(BPF_PROG_LOAD, &at);
	if (r < 0 && (errno == EACCES || errno == EINVAL)) {
		/* load again with the verifier's log, to say why */
		int err0 = errno;
		vlog[0] = 0;
		at.log_buf = (uint64_t)(uintptr_t)vlog;
		at.log_size = sizeof(vlog);
		at.log_level = 1;
		r = sys_bpf(BPF_PROG_LOAD, &at);
		if (r >= 0) {
			close((int)r);
			return err_set(e, err0, "bpf: program %s: load", name);
		}
		char tail[300];
		return err_setx(e, err0, "bpf: program %s: the verifier refused it: %s", name,
				log_tail(vlog, tail, sizeof(tail)));
	}
	if (r < 0)
		return err_set(e, errno, "bpf: program %s: load", name);
	*fd = (int)r;
	return 0;
}

int bpf_prog_test_run(int fd, const void *pkt, size_t len, struct bpf_test_out *out,
		      struct err *e)
{
	union bpf_attr at;
	memset(&at, 0, sizeof(at));
	memset(out, 0, sizeof(*out));
	at.test.prog_fd = (uint32_t)fd;
	at.test.data_in = (uint64_t)(uintptr_t)pkt;
	at.test.data_size_in = (uint32_t)len;
	at.test.data_out = (uint64_t)(uintptr_t)out->data;
	at.test.data_size_out = sizeof(out->data);
	at.test.repeat = 1;
	if (sys_bpf(BPF_PROG_TEST_RUN, &at) < 0)
		return err_set(e, errno, "bpf: test run of program fd %d on %zu bytes", fd, len);
	out->retval = at.test.retval;
	out->len = at.test.data_size_out;
	return 0;
}
