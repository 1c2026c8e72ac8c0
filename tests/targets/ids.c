/* A small client of the raw bpf() syscall, for tests/test_run.py.
 *
 * Creates three array maps, closes the second, creates a fourth; loads a socket filter
 * that uses map 0 and a raw-tracepoint program; attaches it. Prints every id as the
 * kernel (or bpfns run) reports it, then the ids BPF_MAP_GET_NEXT_ID walks from the
 * first map's, one per line: "<what> <id>". Exit 1 on any refusal, with errno.
 */
#include <errno.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static long bpf(int cmd, union bpf_attr *attr, unsigned int size)
{
	return syscall(__NR_bpf, cmd, attr, size);
}

static int check(long ret, const char *what)
{
	if (ret < 0) {
		printf("error %s %d\n", what, errno);
		_exit(1);
	}
	return (int)ret;
}

static int map_create(void)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_type = BPF_MAP_TYPE_ARRAY;
	a.key_size = 4;
	a.value_size = 4;
	a.max_entries = 1;
	return check(bpf(BPF_MAP_CREATE, &a, sizeof(a)), "map_create");
}

static unsigned int id_of(int fd)
{
	struct bpf_map_info info; /* the first 8 bytes (type, id) are alike for every kind */
	union bpf_attr a;
	memset(&info, 0, sizeof(info));
	memset(&a, 0, sizeof(a));
	a.info.bpf_fd = fd;
	a.info.info_len = 8; /* a short info_len is honoured */
	a.info.info = (uint64_t)(uintptr_t)&info;
	check(bpf(BPF_OBJ_GET_INFO_BY_FD, &a, sizeof(a)), "info");
	return info.id;
}

static int prog_load(int type, int map_fd)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_LD | BPF_IMM | BPF_DW, .dst_reg = 1, .src_reg = BPF_PSEUDO_MAP_FD, .imm = map_fd },
		{ 0 },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.prog_type = type;
	a.insn_cnt = map_fd >= 0 ? 4 : 2;
	a.insns = (uint64_t)(uintptr_t)(map_fd >= 0 ? insns : insns + 2);
	a.license = (uint64_t)(uintptr_t)"GPL";
	return check(bpf(BPF_PROG_LOAD, &a, sizeof(a)), "prog_load");
}

int main(void)
{
	int m0 = map_create(), m1 = map_create(), m2 = map_create();
	unsigned int first = id_of(m0);
	printf("map %u\nmap %u\nmap %u\n", first, id_of(m1), id_of(m2));
	close(m1);
	printf("map %u\n", id_of(map_create()));
	int p0 = prog_load(BPF_PROG_TYPE_SOCKET_FILTER, m0);
	int p1 = prog_load(BPF_PROG_TYPE_RAW_TRACEPOINT, -1);
	printf("prog %u\nprog %u\n", id_of(p0), id_of(p1));
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.raw_tracepoint.name = (uint64_t)(uintptr_t)"sys_enter";
	a.raw_tracepoint.prog_fd = p1;
	printf("link %u\n", id_of(check(bpf(BPF_RAW_TRACEPOINT_OPEN, &a, sizeof(a)), "raw_tp")));
	for (unsigned int id = first;;) {
		memset(&a, 0, sizeof(a));
		a.start_id = id;
		if (bpf(BPF_MAP_GET_NEXT_ID, &a, sizeof(a)) < 0)
			break;
		id = a.next_id;
		printf("next %u\n", id);
	}
	fflush(stdout);
	return 0;
}
