/* cuda-emu device memory (flowrl/emu.h): one reserved arena, PROT_NONE except while a launch
 * or a copy runs, so that host code that reads or writes it stops at once with the offset
 * named (the SIGSEGV handler below) instead of silently working on the CPU and failing on a
 * GPU.
 *
 * Allocation is first fit over a sorted block list kept outside the arena; blocks are
 * rounded to 256 bytes. The guard is a counter: fr_emu_open makes [0, high-water) readable
 * and writable, the matching fr_emu_close makes everything it opened PROT_NONE again. */
#include "emu/emu_internal.h"

#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "flowrl/kernel.h"
#include "flowrl/status.h"

#define ARENA_RESERVE ((size_t)1 << 34) /* 16 GiB of address space, none of it committed up front */
#define BLOCK_ALIGN ((size_t)256)

typedef struct {
    size_t off, size;
    int used;
} block;

static struct {
    pthread_mutex_t lock;
    unsigned char *base;
    size_t page;
    block *blocks;
    int n, cap;
    size_t top;     /* end of the last block */
    size_t in_use;  /* bytes of used blocks */
    int open_depth; /* nested fr_emu_open */
    size_t opened;  /* bytes made accessible by the outermost open */
} g = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, NULL, 0, 0, 0, 0, 0, 0};
static struct sigaction g_old_segv; /* the handler before ours */

static size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

/* ---- the guard's message: async-signal-safe writes only ---- */

static void put(const char *s) { (void)!write(2, s, strlen(s)); }

static void put_u(size_t v)
{
    char b[32];
    int i = (int)sizeof b;
    b[--i] = '\0';
    do {
        b[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v && i > 0);
    put(b + i);
}

/* Ends a message line with the host stack, then stops the process. */
static void stack_and_abort(void)
{
    put(" Host stack (addr2line -f -e <binary> <address>):\n");
    void *frames[48];
    int nf = backtrace(frames, 48);
    backtrace_symbols_fd(frames, nf, 2);
    signal(SIGABRT, SIG_DFL);
    abort();
}

static void on_segv(int sig, siginfo_t *si, void *uctx)
{
    unsigned char *a = (unsigned char *)si->si_addr;
    if (g.base && a >= g.base && a < g.base + ARENA_RESERVE) {
        size_t off = (size_t)(a - g.base);
        put("flowrl: host code touched cuda-emu device memory at offset ");
        put_u(off);
        for (int i = 0; i < g.n; i++) {
            if (off >= g.blocks[i].off && off < g.blocks[i].off + g.blocks[i].size) {
                put(" (byte ");
                put_u(off - g.blocks[i].off);
                put(" of a ");
                put_u(g.blocks[i].size);
                put(g.blocks[i].used ? "-byte allocation)" : "-byte free block)");
                break;
            }
        }
        put(": a host loop reads or writes backend memory; use an op entry, or fr_d2h / fr_h2d for per-sample "
            "values.");
        stack_and_abort();
    }
    /* not ours: hand it to whoever had it before (ASan, the default action) */
    if (g_old_segv.sa_flags & SA_SIGINFO) {
        if (g_old_segv.sa_sigaction) {
            g_old_segv.sa_sigaction(sig, si, uctx);
            return;
        }
    } else if (g_old_segv.sa_handler != SIG_DFL && g_old_segv.sa_handler != SIG_IGN) {
        g_old_segv.sa_handler(sig);
        return;
    }
    signal(SIGSEGV, SIG_DFL); /* the faulting access repeats and ends the process */
}

/* Called with the lock held. */
static fr_status ensure_arena(void)
{
    if (g.base) return FR_OK;
    void *p = mmap(NULL, ARENA_RESERVE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return fr_fail(FR_ERR_NOMEM, "cuda-emu: cannot reserve %zu bytes of address space", ARENA_RESERVE);
    g.base = (unsigned char *)p;
    g.page = (size_t)sysconf(_SC_PAGESIZE);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_old_segv);
    return FR_OK;
}

static void protect(size_t bytes, int prot)
{
    if (bytes) mprotect(g.base, round_up(bytes, g.page), prot);
}

void fr_emu_open(void)
{
    pthread_mutex_lock(&g.lock);
    if (g.base && g.open_depth++ == 0) {
        g.opened = g.top;
        protect(g.opened, PROT_READ | PROT_WRITE);
    }
    pthread_mutex_unlock(&g.lock);
}

void fr_emu_close(void)
{
    pthread_mutex_lock(&g.lock);
    if (g.base && g.open_depth > 0 && --g.open_depth == 0) {
        protect(g.opened, PROT_NONE);
        g.opened = 0;
    }
    pthread_mutex_unlock(&g.lock);
}

static int insert_block(int at, block b)
{
    if (g.n == g.cap) {
        int nc = g.cap ? 2 * g.cap : 64;
        block *nb = (block *)realloc(g.blocks, (size_t)nc * sizeof *nb);
        if (!nb) return 0;
        g.blocks = nb;
        g.cap = nc;
    }
    memmove(g.blocks + at + 1, g.blocks + at, (size_t)(g.n - at) * sizeof *g.blocks);
    g.blocks[at] = b;
    g.n++;
    return 1;
}

static void remove_block(int at)
{
    memmove(g.blocks + at, g.blocks + at + 1, (size_t)(g.n - at - 1) * sizeof *g.blocks);
    g.n--;
}

void *fr_emu_mem_alloc(size_t bytes)
{
    size_t need = round_up(bytes ? bytes : 1, BLOCK_ALIGN);
    void *out = NULL;
    pthread_mutex_lock(&g.lock);
    if (ensure_arena() != FR_OK) goto done;
    int at = -1;
    for (int i = 0; i < g.n; i++)
        if (!g.blocks[i].used && g.blocks[i].size >= need) {
            at = i;
            break;
        }
    if (at >= 0) {
        block *b = &g.blocks[at];
        if (b->size > need) {
            block rest = {b->off + need, b->size - need, 0};
            b->size = need;
            if (!insert_block(at + 1, rest)) {
                b->size += rest.size;
                goto done;
            }
        }
        g.blocks[at].used = 1;
    } else {
        if (g.top + need > ARENA_RESERVE) {
            fr_fail(FR_ERR_NOMEM, "cuda-emu: out of device memory (%zu bytes in use, %zu asked)", g.in_use, bytes);
            goto done;
        }
        block nb = {g.top, need, 1};
        if (!insert_block(g.n, nb)) goto done;
        at = g.n - 1;
        g.top += need;
        if (g.open_depth > 0 && g.top > g.opened) { /* allocated inside a launch: open it too */
            protect(g.top, PROT_READ | PROT_WRITE);
            g.opened = g.top;
        }
    }
    g.in_use += need;
    out = g.base + g.blocks[at].off;
    /* zero-filled, like the other backends' alloc */
    if (g.open_depth == 0) protect(g.top, PROT_READ | PROT_WRITE);
    memset(out, 0, need);
    if (g.open_depth == 0) protect(g.top, PROT_NONE);
done:
    pthread_mutex_unlock(&g.lock);
    return out;
}

void fr_emu_mem_free(void *p)
{
    if (!p) return;
    pthread_mutex_lock(&g.lock);
    size_t off = (size_t)((unsigned char *)p - g.base);
    int at = -1;
    for (int i = 0; i < g.n; i++)
        if (g.blocks[i].off == off && g.blocks[i].used) at = i;
    if (at < 0) {
        pthread_mutex_unlock(&g.lock);
        put("flowrl: cuda-emu: free of a pointer that is not a live device allocation\n");
        abort();
    }
    g.blocks[at].used = 0;
    g.in_use -= g.blocks[at].size;
    if (at + 1 < g.n && !g.blocks[at + 1].used) {
        g.blocks[at].size += g.blocks[at + 1].size;
        remove_block(at + 1);
    }
    if (at > 0 && !g.blocks[at - 1].used) {
        g.blocks[at - 1].size += g.blocks[at].size;
        remove_block(at);
        at--;
    }
    if (at == g.n - 1) { /* the top block: give the address range back to the bump end */
        g.top = g.blocks[at].off;
        remove_block(at);
    }
    pthread_mutex_unlock(&g.lock);
}

int fr_emu_is_device(const void *p)
{
    const unsigned char *a = (const unsigned char *)p;
    return g.base && a >= g.base && a < g.base + ARENA_RESERVE;
}

/* 1 if [p, p + bytes) lies inside one live allocation: a binary search over the blocks,
 * which tile [0, top) in offset order, since every op entry checks its arguments here. */
int fr_emu_is_device_range(const void *p, size_t bytes)
{
    if (!fr_emu_is_device(p)) return 0;
    int ok = 0;
    pthread_mutex_lock(&g.lock);
    size_t off = (size_t)((const unsigned char *)p - g.base);
    int lo = 0, hi = g.n - 1, at = -1; /* at: the last block with offset <= off */
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (g.blocks[mid].off <= off) {
            at = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    if (at >= 0) {
        const block *b = &g.blocks[at];
        ok = b->used && bytes <= b->size && off - b->off <= b->size - bytes;
    }
    pthread_mutex_unlock(&g.lock);
    return ok;
}

void fr_emu_karg(const char *entry, const char *name, int64_t index, const void *p, size_t bytes, int optional)
{
    if (bytes == 0 || (optional && !p) || fr_emu_is_device_range(p, bytes)) return;
    if (strncmp(entry, "k_", 2) == 0) entry += 2; /* the op entry k_gemm fills ops->gemm */
    char idx[32] = "";
    if (index >= 0) snprintf(idx, sizeof idx, "[%lld]", (long long)index);
    fflush(stderr);
    if (fr_emu_is_device(p))
        dprintf(2,
                "flowrl: cuda-emu: %s argument %s%s (%p, %zu bytes) is not inside one live device allocation: "
                "the caller passed a freed buffer or one shorter than the op's extent.",
                entry, name, idx, p, bytes);
    else
        dprintf(2,
                "flowrl: cuda-emu: %s argument %s%s (%p, %zu bytes) is not device memory: the caller passed a host "
                "buffer to a device backend.",
                entry, name, idx, p, bytes);
    stack_and_abort();
}

size_t fr_emu_bytes_in_use(void)
{
    pthread_mutex_lock(&g.lock);
    size_t n = g.in_use;
    pthread_mutex_unlock(&g.lock);
    return n;
}
