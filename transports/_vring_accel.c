/*
 * transports._vring_accel: the virtio split virtqueue (legacy layout) in C.
 *
 * VringDriver and VringDevice here are drop-in equivalents of PyVringDriver and PyVringDevice
 * in transports/virtio/vring.py (read that module's docstring for the theory of operation): same
 * constructor and method signatures, same return values, the same exception classes (taken
 * from transports.errors at import) with the same messages, head= and consumed= values, and
 * the same state changes before every raise. The Python classes are the specification; this
 * file mirrors them statement by statement, and tests/unit/test_vring_accel.py drives both through
 * the same random operations and hostile memory writes and compares everything.
 *
 * One deliberate layering exception: the per-message rpmsg methods (VringDriver.add_message
 * and get_message, VringDevice.take_message and put_message; the last section of this file)
 * know the 16-byte rpmsg header, as their pure counterparts in transports/virtio/messages.py do. That
 * section says why they exist and what they guarantee.
 *
 * Shared memory. The ring lives in a writable buffer held (PyObject_GetBuffer) for the
 * object's lifetime; nothing outside [0, layout.size) is ever read or written. Ring indices
 * and flags (avail.flags, avail.idx, avail.ring[], used.flags, used.idx) are written by the
 * other side while we run: each is one aligned 16-bit load or store (never torn). We read the
 * peer's index with acquire semantics before reading the entries it covers, and publish our
 * own index with a release store after writing the descriptor / used element it covers, so
 * the peer sees the entry before the index on weakly ordered CPUs too. Descriptors and used
 * elements are copied out of shared memory once (memcpy) and only the copy is validated and
 * used, so a peer rewriting them concurrently cannot get a value past a check.
 *
 * Legacy virtio is host-endian and every host aioamp supports is little-endian, so fields are
 * read and written in host order; big-endian hosts are refused at build time.
 *
 * AIOAMP_PURE_PYTHON set to a non-empty value other than "0" makes the import fail with
 * ImportError, so transports.virtio.vring falls back to the pure classes.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "transports._vring_accel requires a little-endian host (legacy virtio is host-endian)"
#endif

#if PY_VERSION_HEX < 0x030B0000
#error "transports._vring_accel requires CPython 3.11 or newer"
#endif

#define DESC_SIZE 16      /* struct vring_desc { le64 addr; le32 len; le16 flags; le16 next; } */
#define USED_ELEM_SIZE 8  /* struct vring_used_elem { le32 id; le32 len; } */
#define F_NEXT 1u
#define F_WRITE 2u
#define F_INDIRECT 4u
#define CHAINED (F_NEXT | F_INDIRECT)
#define AVAIL_F_NO_INTERRUPT 1u
#define USED_F_NO_NOTIFY 1u
#define MAX_VRING_NUM 32768

/* Set at module init. */
static PyObject *RemoteProtocolError;  /* transports.errors.RemoteProtocolError */
static PyObject *RingFullError;        /* transports.errors.RingFullError */
static PyObject *desc_pack_into;       /* struct.Struct("<QIHH").pack_into */
static PyObject *used_pack_into;       /* struct.Struct("<II").pack_into */
static PyObject *kwnames_head_consumed; /* ("head", "consumed") */
static PyObject *str_writable;         /* "writable", interned */
static PyObject *int_zero;             /* 0 */
static PyObject *int_write;            /* VRING_DESC_F_WRITE */
static PyObject *empty_str;            /* "" */
static PyObject *pack_u64;             /* struct.Struct("<Q").pack (the fused methods' ints) */
static PyObject *pack_u32;             /* struct.Struct("<I").pack */
static PyObject *pack_u16;             /* struct.Struct("<H").pack */

/* ------------------------------------------------------------------------------------------ */
/* State shared by both halves (the Python _Half).                                            */

typedef struct {
    PyObject_HEAD
    Py_buffer view;       /* the ring memory; view.obj != NULL while held */
    unsigned char *base;  /* view.buf, or NULL once released (tp_clear) */
    PyObject *layout;     /* the VringLayout */
    PyObject *num_obj;    /* num as a Python int (for comparisons with foreign head objects) */
    size_t size;          /* layout.size: every access stays below it */
    uint32_t num;
    uint32_t mask;        /* num is a power of two: idx % num == idx & mask */
    size_t avail_flags, avail_idx, avail_ring, used_flags, used_idx, used_ring;
    int aligned;          /* base is 2-byte aligned: u16 words can be accessed atomically */
} Half;

typedef struct {
    Half h;
    uint16_t next_avail;
    uint16_t last_used;
    uint32_t nfree;       /* free ids on the stack */
    uint16_t *free_ids;   /* stack: free_ids[nfree - 1] is handed out next */
    uint8_t *in_flight;
    uint8_t *write;       /* the byte stored from post(writable=...) */
    uint64_t *addr;       /* shadow copy of what we posted */
    uint32_t *len;
    /* The Python class keeps the very objects passed to post(): for an argument that is not an
     * exact int (a bool, an __index__ object) we keep it too, here (NULL: use addr / len);
     * allocated on first use. */
    PyObject **addr_obj;
    PyObject **len_obj;
} Driver;

typedef struct {
    Half h;
    uint16_t last_avail;
    uint16_t next_used;
    uint32_t ntaken;
    uint8_t *taken;
    PyObject *check;      /* region_check, or NULL for the default (every buffer is fine) */
} Device;

/* The fused rpmsg methods, defined in their own section at the end of the file. */
static PyObject *Driver_add_message(Driver *, PyObject *const *, Py_ssize_t, PyObject *);
static PyObject *Driver_get_message(Driver *, PyObject *const *, Py_ssize_t, PyObject *);
static PyObject *Device_take_message(Device *, PyObject *const *, Py_ssize_t, PyObject *);
static PyObject *Device_put_message(Device *, PyObject *const *, Py_ssize_t, PyObject *);

/* ---- shared-memory access ---------------------------------------------------------------- */

/* One aligned 16-bit access each. If the caller's buffer is not even 2-byte aligned (the pure
 * class accepts that), there is no single access to be had: copy the bytes, fenced the same
 * way. */
static inline uint16_t
ld16_acquire(const Half *h, size_t off)
{
    const unsigned char *p = h->base + off;
    if (h->aligned) {
        return __atomic_load_n((const uint16_t *)(const void *)p, __ATOMIC_ACQUIRE);
    }
    uint16_t v;
    memcpy(&v, p, sizeof v);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    return v;
}

static inline uint16_t
ld16_relaxed(const Half *h, size_t off)
{
    const unsigned char *p = h->base + off;
    if (h->aligned) {
        return __atomic_load_n((const uint16_t *)(const void *)p, __ATOMIC_RELAXED);
    }
    uint16_t v;
    memcpy(&v, p, sizeof v);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    return v;
}

static inline void
st16_release(const Half *h, size_t off, uint16_t v)
{
    unsigned char *p = h->base + off;
    if (h->aligned) {
        __atomic_store_n((uint16_t *)(void *)p, v, __ATOMIC_RELEASE);
        return;
    }
    __atomic_thread_fence(__ATOMIC_RELEASE);
    memcpy(p, &v, sizeof v);
}

static inline void
st16_relaxed(const Half *h, size_t off, uint16_t v)
{
    unsigned char *p = h->base + off;
    if (h->aligned) {
        __atomic_store_n((uint16_t *)(void *)p, v, __ATOMIC_RELAXED);
        return;
    }
    memcpy(p, &v, sizeof v);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

/* kick_needed() / interrupt_needed(): whether the peer's flag word at off lacks bit.
 * Full barrier between publishing our index and reading the peer's flags (the kernel's
 * virtqueue_kick_prepare does virtio_mb() here): otherwise the load could be satisfied before
 * the store is visible and a notification be lost. */
static inline int
peer_wants_notification(const Half *h, size_t off, unsigned bit)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return !(ld16_relaxed(h, off) & bit);
}

/* Copy n bytes the peer may be rewriting; the compiler barrier makes every later use read the
 * copy (no re-load from shared memory after a value has been validated). */
static inline void
copy_from_shared(void *dst, const unsigned char *src, size_t n)
{
    memcpy(dst, src, n);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

typedef struct {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
} Desc;

static inline Desc
read_desc(const Half *h, uint32_t i)
{
    unsigned char raw[DESC_SIZE];
    Desc d;
    copy_from_shared(raw, h->base + (size_t)DESC_SIZE * i, DESC_SIZE);
    memcpy(&d.addr, raw, 8);
    memcpy(&d.len, raw + 8, 4);
    memcpy(&d.flags, raw + 12, 2);
    memcpy(&d.next, raw + 14, 2);
    return d;
}

static inline void
write_desc(const Half *h, uint32_t i, uint64_t addr, uint32_t len, uint16_t flags)
{
    unsigned char raw[DESC_SIZE];
    uint16_t next = 0;
    memcpy(raw, &addr, 8);
    memcpy(raw + 8, &len, 4);
    memcpy(raw + 12, &flags, 2);
    memcpy(raw + 14, &next, 2);
    memcpy(h->base + (size_t)DESC_SIZE * i, raw, DESC_SIZE);
}

/* ---- errors ------------------------------------------------------------------------------ */

/* raise RemoteProtocolError(message, head=head or None, consumed=consumed) */
static void
raise_rpe(const char *message, long head, int consumed)
{
    PyObject *msg = PyUnicode_FromString(message);
    if (msg == NULL) {
        return;
    }
    PyObject *head_obj = head < 0 ? Py_NewRef(Py_None) : PyLong_FromLong(head);
    if (head_obj == NULL) {
        Py_DECREF(msg);
        return;
    }
    PyObject *args[3] = {msg, head_obj, consumed ? Py_True : Py_False};
    PyObject *exc = PyObject_Vectorcall(RemoteProtocolError, args, 1, kwnames_head_consumed);
    Py_DECREF(msg);
    Py_DECREF(head_obj);
    if (exc != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
}

/* The pending exception is a RemoteProtocolError: set its consumed attribute to True (the
 * Python classes' `except RemoteProtocolError as exc: exc.consumed = True; raise`). */
static void
mark_consumed(void)
{
    if (!PyErr_ExceptionMatches(RemoteProtocolError)) {
        return;
    }
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *exc = PyErr_GetRaisedException();
    if (PyObject_SetAttrString(exc, "consumed", Py_True) < 0) {
        Py_DECREF(exc);
        return;
    }
    PyErr_SetRaisedException(exc);
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL) {
        PyException_SetTraceback(value, tb);
    }
    if (PyObject_SetAttrString(value, "consumed", Py_True) < 0) {
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        return;
    }
    PyErr_Restore(type, value, tb);
#endif
}

static PyObject *
released_error(void)
{
    PyErr_SetString(PyExc_ValueError, "operation on a vring whose memory was released");
    return NULL;
}

#define REQUIRE_MEMORY(h)                \
    do {                                 \
        if ((h)->base == NULL) {         \
            return released_error();     \
        }                                \
    } while (0)

/* ---- results ------------------------------------------------------------------------------ */

/* Build a tuple from new references (stolen); NULL items mean an error occurred. */
static PyObject *
steal_tuple(Py_ssize_t n, PyObject **items)
{
    PyObject *t = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (items[i] == NULL) {
            goto error;
        }
    }
    t = PyTuple_New(n);
    if (t == NULL) {
        goto error;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyTuple_SET_ITEM(t, i, items[i]);
    }
    return t;
error:
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_XDECREF(items[i]);
    }
    return NULL;
}

/* (addr, len, flags) of one descriptor. */
static PyObject *
segment_tuple(const Desc *d)
{
    PyObject *items[3] = {
        PyLong_FromUnsignedLongLong(d->addr),
        PyLong_FromUnsignedLong(d->len),
        PyLong_FromLong(d->flags),
    };
    return steal_tuple(3, items);
}

/* (head, addr, len, flags): take()'s result. */
static PyObject *
take_tuple(long head, const Desc *d)
{
    PyObject *items[4] = {
        PyLong_FromLong(head),
        PyLong_FromUnsignedLongLong(d->addr),
        PyLong_FromUnsignedLong(d->len),
        PyLong_FromLong(d->flags),
    };
    return steal_tuple(4, items);
}

/* ---- argument binding -------------------------------------------------------------------- */

/* Bind a vectorcall's arguments to `names`: the first npos are positional-or-keyword, the rest
 * keyword-only; every one is required (true of every method here). */
static int
bind_args(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
          const char *const *names, Py_ssize_t npos, Py_ssize_t n, PyObject **out)
{
    if (nargs > npos) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd positional argument%s but %zd %s given",
                     fname, npos + 1, npos + 1 == 1 ? "" : "s", nargs + 1,
                     nargs + 1 == 1 ? "was" : "were");
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        out[i] = i < nargs ? args[i] : NULL;
    }
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        Py_ssize_t j = 0;
        while (j < n && PyUnicode_CompareWithASCIIString(key, names[j]) != 0) {
            j++;
        }
        if (j == n) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fname,
                         key);
            return -1;
        }
        if (out[j] != NULL) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fname,
                         names[j]);
            return -1;
        }
        out[j] = args[nargs + k];
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (out[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing 1 required %s argument: '%s'", fname,
                         i < npos ? "positional" : "keyword-only", names[i]);
            return -1;
        }
    }
    return 0;
}

/* ---- buffers ------------------------------------------------------------------------------ */

/* PyObject_GetBuffer(obj, view, flags) for a memory argument, plus our own check that the
 * memory is one C-contiguous run: flags without PyBUF_STRIDES already ask for that, but the
 * pointer arithmetic below relies on it, so an exporter that ignores the flags is refused too.
 * 0, or -1 with an exception and nothing held. */
static int
get_contiguous(PyObject *obj, Py_buffer *view, int flags)
{
    if (PyObject_GetBuffer(obj, view, flags) < 0) {
        return -1;
    }
    if (!PyBuffer_IsContiguous(view, 'C')) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_BufferError, "memory is not C-contiguous");
        return -1;
    }
    return 0;
}

/* ---- construction, GC, destruction ------------------------------------------------------- */

static int
layout_attr(PyObject *layout, const char *name, Py_ssize_t *out)
{
    PyObject *v = PyObject_GetAttrString(layout, name);
    if (v == NULL) {
        return -1;
    }
    *out = PyNumber_AsSsize_t(v, PyExc_OverflowError);
    Py_DECREF(v);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

/* The Python _Half.__init__: take the memory, check its size, read the layout's offsets. The
 * offsets are also checked against the legacy geometry (always true of a VringLayout), so a
 * duck-typed layout can never make us touch memory outside [0, size). */
static int
half_init(Half *h, PyObject *mem, PyObject *layout)
{
    if (get_contiguous(mem, &h->view, PyBUF_WRITABLE) < 0) {
        return -1;
    }
    PyObject *size_obj = PyObject_GetAttrString(layout, "size");
    if (size_obj == NULL) {
        return -1;
    }
    Py_ssize_t size = PyNumber_AsSsize_t(size_obj, PyExc_OverflowError);
    if (size == -1 && PyErr_Occurred()) {
        Py_DECREF(size_obj);
        return -1;
    }
    if (h->view.len < size) {
        PyErr_Format(PyExc_ValueError, "vring memory of %zd bytes < layout size %S", h->view.len,
                     size_obj);
        Py_DECREF(size_obj);
        return -1;
    }
    Py_DECREF(size_obj);

    Py_ssize_t num, align, avail, avail_ring, used, used_ring;
    if (layout_attr(layout, "num", &num) < 0 || layout_attr(layout, "align", &align) < 0 ||
        layout_attr(layout, "avail", &avail) < 0 ||
        layout_attr(layout, "avail_ring", &avail_ring) < 0 ||
        layout_attr(layout, "used", &used) < 0 ||
        layout_attr(layout, "used_ring", &used_ring) < 0) {
        return -1;
    }
    int ok = num >= 1 && num <= MAX_VRING_NUM && (num & (num - 1)) == 0 && align >= 1 &&
             (align & (align - 1)) == 0 && align <= size && avail == DESC_SIZE * num &&
             avail_ring == avail + 4 &&
             used == ((avail + 2 * (3 + num) + align - 1) & ~(align - 1)) &&
             used_ring == used + 4 && size == used_ring + USED_ELEM_SIZE * num + 2;
    if (!ok) {
        PyErr_Format(PyExc_ValueError, "vring layout %R does not describe a legacy split vring",
                     layout);
        return -1;
    }
    h->num_obj = PyLong_FromSsize_t(num);
    if (h->num_obj == NULL) {
        return -1;
    }
    h->layout = Py_NewRef(layout);
    h->size = (size_t)size;
    h->num = (uint32_t)num;
    h->mask = (uint32_t)num - 1;
    h->avail_flags = (size_t)avail;
    h->avail_idx = (size_t)avail + 2;
    h->avail_ring = (size_t)avail_ring;
    h->used_flags = (size_t)used;
    h->used_idx = (size_t)used + 2;
    h->used_ring = (size_t)used_ring;
    h->base = h->view.buf;
    h->aligned = ((uintptr_t)h->base & 1u) == 0;
    return 0;
}

/* start_index & 0xFFFF, as a ring index. */
static long
masked_index(PyObject *start_index)
{
    static PyObject *mask;
    if (mask == NULL && (mask = PyLong_FromLong(0xFFFF)) == NULL) {
        return -1;
    }
    PyObject *v = PyNumber_And(start_index, mask);
    if (v == NULL) {
        return -1;
    }
    if (!PyLong_Check(v)) {
        Py_DECREF(v);
        PyErr_SetString(PyExc_TypeError, "memoryview: invalid type for format 'H'");
        return -1;
    }
    long idx = PyLong_AsLong(v);
    Py_DECREF(v);
    if (idx == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (idx < 0 || idx > 0xFFFF) {
        PyErr_SetString(PyExc_ValueError, "memoryview: invalid value for format 'H'");
        return -1;
    }
    return idx;
}

/* The memory's owner (view.obj) is deliberately not visited. Reported to the collector, a
 * memoryview in the same garbage cycle could be cleared while our export is still live, and
 * CPython without the fix for gh-77894 (3.11 among them) then drops the memoryview's managed
 * buffer and crashes when the memoryview is deallocated. Unreported, our reference keeps it reachable until we release
 * it (tp_clear or dealloc). The cycles that matter (region_check bound to the ring's owner) go
 * through the layout and the region check, which are visited. */
static int
half_traverse(Half *h, visitproc visit, void *arg)
{
    Py_VISIT(h->layout);
    return 0;
}

static void
half_clear(Half *h)
{
    h->base = NULL;
    if (h->view.obj != NULL) {
        PyBuffer_Release(&h->view);  /* sets view.obj to NULL */
    }
    Py_CLEAR(h->layout);
    Py_CLEAR(h->num_obj);
}

static PyObject *
half_get_layout(Half *h, void *closure)
{
    (void)closure;
    return Py_NewRef(h->layout != NULL ? h->layout : Py_None);
}

static PyObject *
half_get_num(Half *h, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLong(h->num);
}

/* ========================================================================================== */
/* VringDriver                                                                                */

static PyObject *
Driver_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"mem", "layout", "reset", "start_index", NULL};
    PyObject *mem, *layout, *reset = Py_True, *start_index = int_zero;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|$OO:VringDriver", kwlist, &mem, &layout,
                                     &reset, &start_index)) {
        return NULL;
    }
    Driver *self = (Driver *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    Half *h = &self->h;
    if (half_init(h, mem, layout) < 0) {
        goto fail;
    }
    int do_reset = PyObject_IsTrue(reset);
    if (do_reset < 0) {
        goto fail;
    }
    if (do_reset) {
        memset(h->base, 0, h->size);
        long idx = masked_index(start_index);
        if (idx < 0) {
            goto fail;
        }
        st16_release(h, h->avail_idx, (uint16_t)idx);
        st16_release(h, h->used_idx, (uint16_t)idx);
    }
    long start = masked_index(start_index);
    if (start < 0) {
        goto fail;
    }
    self->next_avail = (uint16_t)start;
    self->last_used = (uint16_t)start;
    uint32_t num = h->num;
    self->free_ids = PyMem_Calloc(num, sizeof *self->free_ids);
    self->in_flight = PyMem_Calloc(num, 1);
    self->write = PyMem_Calloc(num, 1);
    self->addr = PyMem_Calloc(num, sizeof *self->addr);
    self->len = PyMem_Calloc(num, sizeof *self->len);
    if (!self->free_ids || !self->in_flight || !self->write || !self->addr || !self->len) {
        PyErr_NoMemory();
        goto fail;
    }
    /* Free descriptor ids as a stack: id 0 is handed out first, reclaimed ids are reused first
     * (the kernel's free-list order). */
    for (uint32_t i = 0; i < num; i++) {
        self->free_ids[i] = (uint16_t)(num - 1 - i);
    }
    self->nfree = num;
    return (PyObject *)self;

fail:
    Py_DECREF(self);
    return NULL;
}

static int
Driver_traverse(Driver *self, visitproc visit, void *arg)
{
    if (self->addr_obj != NULL) {
        for (uint32_t i = 0; i < self->h.num; i++) {
            Py_VISIT(self->addr_obj[i]);
            Py_VISIT(self->len_obj[i]);
        }
    }
    return half_traverse(&self->h, visit, arg);
}

static void
driver_clear_objects(Driver *self)
{
    if (self->addr_obj != NULL) {
        for (uint32_t i = 0; i < self->h.num; i++) {
            Py_CLEAR(self->addr_obj[i]);
            Py_CLEAR(self->len_obj[i]);
        }
    }
}

static int
Driver_clear(Driver *self)
{
    driver_clear_objects(self);
    half_clear(&self->h);
    return 0;
}

static void
Driver_dealloc(Driver *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    driver_clear_objects(self);
    half_clear(&self->h);
    PyMem_Free(self->addr_obj);
    PyMem_Free(self->len_obj);
    PyMem_Free(self->free_ids);
    PyMem_Free(self->in_flight);
    PyMem_Free(self->write);
    PyMem_Free(self->addr);
    PyMem_Free(self->len);
    tp->tp_free((PyObject *)self);
}

static PyObject *
Driver_get_num_free(Driver *self, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLong(self->nfree);
}

static PyObject *
Driver_get_num_in_flight(Driver *self, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLong(self->h.num - self->nfree);
}

/* Exact ints that fit: the common case, packed here. Anything else (bools, __index__ objects,
 * out-of-range or non-integer values) goes through struct itself, which decides the outcome
 * and the exception exactly as in the Python class. */
static inline int
exact_u64(PyObject *v, uint64_t *out)
{
    if (!PyLong_CheckExact(v)) {
        return 0;
    }
    unsigned long long x = PyLong_AsUnsignedLongLong(v);
    if (x == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    *out = x;
    return 1;
}

static inline int
exact_u32(PyObject *v, uint32_t *out)
{
    if (!PyLong_CheckExact(v)) {
        return 0;
    }
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || x < 0 || x > 0xFFFFFFFFLL) {
        return 0;  /* also x == -1 with an error: impossible for an exact int */
    }
    *out = (uint32_t)x;
    return 1;
}

/* struct.Struct(...).pack_into(<the ring memory>, offset, *values), for the arguments the fast
 * paths do not take: struct then decides the outcome (and the exception, and how much of the
 * entry it wrote before failing) exactly as in the Python class. The memory is passed as a
 * temporary memoryview of the very buffer we hold. */
static int
pack_into(PyObject *pack, Half *h, size_t off, PyObject **values, Py_ssize_t n)
{
    PyObject *args[6];
    args[0] = PyMemoryView_FromBuffer(&h->view);
    if (args[0] == NULL) {
        return -1;
    }
    args[1] = PyLong_FromSize_t(off);
    if (args[1] == NULL) {
        Py_DECREF(args[0]);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        args[2 + i] = values[i];
    }
    PyObject *r = PyObject_Vectorcall(pack, args, 2 + n, NULL);
    Py_DECREF(args[0]);
    Py_DECREF(args[1]);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

/* self._addr[head] / self._len[head] as the Python class holds them. */
static PyObject *
posted_addr(Driver *self, uint32_t head)
{
    if (self->addr_obj != NULL && self->addr_obj[head] != NULL) {
        return Py_NewRef(self->addr_obj[head]);
    }
    return PyLong_FromUnsignedLongLong(self->addr[head]);
}

static PyObject *
posted_len(Driver *self, uint32_t head)
{
    if (self->len_obj != NULL && self->len_obj[head] != NULL) {
        return Py_NewRef(self->len_obj[head]);
    }
    return PyLong_FromUnsignedLong(self->len[head]);
}

/* The arrays that keep post()'s non-int address/length arguments, allocated on first need.
 * 0 or -1 (MemoryError). */
static int
ensure_kept_arrays(Driver *self)
{
    if (self->addr_obj != NULL) {
        return 0;
    }
    self->addr_obj = PyMem_Calloc(self->h.num, sizeof(PyObject *));
    self->len_obj = PyMem_Calloc(self->h.num, sizeof(PyObject *));
    if (self->addr_obj == NULL || self->len_obj == NULL) {
        PyMem_Free(self->addr_obj);
        PyMem_Free(self->len_obj);
        self->addr_obj = self->len_obj = NULL;
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* The end of every post: descriptor ``head`` in flight, its id in the next avail slot, then
 * the new avail.idx published with release semantics: the device must see the descriptor
 * (and a fused method's message) and the slot before the index, also on weakly ordered CPUs. */
static void
publish_avail(Driver *self, uint32_t head)
{
    Half *h = &self->h;
    self->in_flight[head] = 1;
    uint16_t idx = self->next_avail;
    st16_relaxed(h, h->avail_ring + 2 * (size_t)(idx & h->mask), (uint16_t)head);
    idx = (uint16_t)(idx + 1);
    self->next_avail = idx;
    st16_release(h, h->avail_idx, idx);
}

static PyObject *
Driver_post(Driver *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"addr", "length", "writable"};
    PyObject *a[3];
    if (nargs == 2 && kwnames != NULL && PyTuple_GET_SIZE(kwnames) == 1 &&
        PyTuple_GET_ITEM(kwnames, 0) == str_writable) {
        a[0] = args[0];
        a[1] = args[1];
        a[2] = args[2];
    }
    else if (bind_args("VringDriver.post", args, nargs, kwnames, names, 2, 3, a) < 0) {
        return NULL;
    }
    PyObject *addr_obj = a[0], *length_obj = a[1], *writable = a[2];
    Half *h = &self->h;
    REQUIRE_MEMORY(h);
    if (self->nfree == 0) {
        PyErr_Format(RingFullError, "all %u descriptors are in flight", (unsigned)h->num);
        return NULL;
    }
    uint32_t head = self->free_ids[--self->nfree];
    int w = PyObject_IsTrue(writable);
    if (w < 0) {
        return NULL;
    }
    uint16_t flags = w ? F_WRITE : 0;
    uint64_t addr = 0;
    uint32_t length = 0;
    int exact = exact_u64(addr_obj, &addr) && exact_u32(length_obj, &length);
    if (exact) {
        write_desc(h, head, addr, length, flags);
    }
    else {
        PyObject *values[4] = {addr_obj, length_obj, w ? int_write : int_zero, int_zero};
        if (pack_into(desc_pack_into, h, (size_t)DESC_SIZE * head, values, 4) < 0 ||
            ensure_kept_arrays(self) < 0) {
            return NULL;
        }
    }
    /* self._addr[head] = addr; self._len[head] = length */
    self->addr[head] = addr;
    self->len[head] = length;
    if (self->addr_obj != NULL) {
        Py_XSETREF(self->addr_obj[head], exact ? NULL : Py_NewRef(addr_obj));
        Py_XSETREF(self->len_obj[head], exact ? NULL : Py_NewRef(length_obj));
    }
    /* self._write[head] = writable: a bytearray item, so an int in range(256). */
    uint8_t wbyte;
    if (writable == Py_True || writable == Py_False) {
        wbyte = writable == Py_True;
    }
    else {
        int overflow;
        long b = PyLong_AsLongAndOverflow(writable, &overflow);
        if (b == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (overflow || b < 0 || b >= 256) {
            PyErr_SetString(PyExc_ValueError, "byte must be in range(0, 256)");
            return NULL;
        }
        wbyte = (uint8_t)b;
    }
    self->write[head] = wbyte;
    publish_avail(self, head);
    return PyLong_FromUnsignedLong(head);
}

static PyObject *
Driver_has_used(Driver *self, PyObject *Py_UNUSED(ignored))
{
    REQUIRE_MEMORY(&self->h);
    return PyBool_FromLong(ld16_acquire(&self->h, self->h.used_idx) != self->last_used);
}

/* `used_len > self._len[head]` and its error when the posted length is a foreign object (see
 * Driver.len_obj): 0, or -1 with an exception. */
static int
used_len_too_long(uint16_t last, uint32_t head, uint32_t used_len, PyObject *len_obj)
{
    PyObject *used = PyLong_FromUnsignedLong(used_len);
    if (used == NULL) {
        return -1;
    }
    int over = PyObject_RichCompareBool(used, len_obj, Py_GT);
    Py_DECREF(used);
    if (over <= 0) {
        return over;
    }
    PyObject *text = PyObject_Format(len_obj, empty_str);
    if (text == NULL) {
        return -1;
    }
    PyObject *message = PyUnicode_FromFormat(
        "used entry %u: device wrote %lu bytes into the %U-byte buffer of descriptor %lu",
        (unsigned)last, (unsigned long)used_len, text, (unsigned long)head);
    Py_DECREF(text);
    if (message == NULL) {
        return -1;
    }
    const char *utf8 = PyUnicode_AsUTF8(message);
    if (utf8 != NULL) {
        raise_rpe(utf8, (long)head, 1);
    }
    Py_DECREF(message);
    return -1;
}

/* The body of get_used() (shared with get_message): 1 with *head_out and *used_len_out set, 0
 * when nothing is pending, -1 with an exception (the state changes of the pure class made). */
static int
get_used_core(Driver *self, uint32_t *head_out, uint32_t *used_len_out)
{
    Half *h = &self->h;
    char msg[200];
    /* Acquire: the used element read below is the one the device wrote before this index. */
    uint16_t used_idx = ld16_acquire(h, h->used_idx);
    uint16_t last = self->last_used;
    if (used_idx == last) {
        return 0;
    }
    unsigned pending = (uint16_t)(used_idx - last);
    if (pending > h->num) {
        snprintf(msg, sizeof msg, "used.idx moved from %u to %u: %u entries > num %u",
                 (unsigned)last, (unsigned)used_idx, pending, (unsigned)h->num);
        raise_rpe(msg, -1, 0);
        return -1;
    }
    unsigned char raw[USED_ELEM_SIZE];
    uint32_t head, used_len;
    copy_from_shared(raw, h->base + h->used_ring + (size_t)USED_ELEM_SIZE * (last & h->mask),
                     USED_ELEM_SIZE);
    memcpy(&head, raw, 4);
    memcpy(&used_len, raw + 4, 4);
    self->last_used = (uint16_t)(last + 1);
    if (head >= h->num) {
        snprintf(msg, sizeof msg, "used entry %u names descriptor %lu >= num %u", (unsigned)last,
                 (unsigned long)head, (unsigned)h->num);
        raise_rpe(msg, -1, 1);
        return -1;
    }
    if (!self->in_flight[head]) {
        snprintf(msg, sizeof msg,
                 "used entry %u returns descriptor %lu, which is not in flight", (unsigned)last,
                 (unsigned long)head);
        raise_rpe(msg, -1, 1);
        return -1;
    }
    self->in_flight[head] = 0;
    if (self->nfree < h->num) {  /* always: only ids in flight come back */
        self->free_ids[self->nfree++] = (uint16_t)head;
    }
    if (self->write[head]) {
        PyObject *len_obj = self->len_obj != NULL ? self->len_obj[head] : NULL;
        if (len_obj == NULL) {
            if (used_len > self->len[head]) {
                snprintf(msg, sizeof msg,
                         "used entry %u: device wrote %lu bytes into the %lu-byte buffer of "
                         "descriptor %lu",
                         (unsigned)last, (unsigned long)used_len, (unsigned long)self->len[head],
                         (unsigned long)head);
                raise_rpe(msg, (long)head, 1);
                return -1;
            }
        }
        else if (used_len_too_long(last, head, used_len, len_obj) < 0) {
            return -1;
        }
    }
    *head_out = head;
    *used_len_out = used_len;
    return 1;
}

static PyObject *
Driver_get_used(Driver *self, PyObject *Py_UNUSED(ignored))
{
    REQUIRE_MEMORY(&self->h);
    uint32_t head, used_len;
    int got = get_used_core(self, &head, &used_len);
    if (got <= 0) {
        return got == 0 ? Py_NewRef(Py_None) : NULL;
    }
    PyObject *items[3] = {
        PyLong_FromUnsignedLong(head),
        posted_addr(self, head),
        PyLong_FromUnsignedLong(used_len),
    };
    return steal_tuple(3, items);
}

/* list indexing of the shadow arrays: ints (negative ones count from the end) or __index__. */
static int
list_index(PyObject *item, uint32_t num, Py_ssize_t *out)
{
    if (!PyIndex_Check(item)) {
        PyErr_Format(PyExc_TypeError, "list indices must be integers or slices, not %.200s",
                     Py_TYPE(item)->tp_name);
        return -1;
    }
    Py_ssize_t i = PyNumber_AsSsize_t(item, PyExc_IndexError);
    if (i == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (i < 0) {
        i += num;
    }
    if (i < 0 || i >= (Py_ssize_t)num) {
        PyErr_SetString(PyExc_IndexError, "list index out of range");
        return -1;
    }
    *out = i;
    return 0;
}

static PyObject *
Driver_buffer_of(Driver *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"head"};
    PyObject *head;
    if (nargs == 1 && kwnames == NULL) {
        head = args[0];
    }
    else if (bind_args("VringDriver.buffer_of", args, nargs, kwnames, names, 1, 1, &head) < 0) {
        return NULL;
    }
    Py_ssize_t i;
    if (list_index(head, self->h.num, &i) < 0) {
        return NULL;
    }
    PyObject *addr = posted_addr(self, (uint32_t)i);
    if (addr == NULL) {
        return NULL;
    }
    PyObject *len = posted_len(self, (uint32_t)i);
    if (len == NULL) {
        Py_DECREF(addr);
        return NULL;
    }
    PyObject *t = PyTuple_Pack(2, addr, len);
    Py_DECREF(addr);
    Py_DECREF(len);
    return t;
}

static PyObject *
Driver_kick_needed(Driver *self, PyObject *Py_UNUSED(ignored))
{
    REQUIRE_MEMORY(&self->h);
    /* Full barrier between publishing avail.idx and reading used.flags: see
     * peer_wants_notification. */
    return PyBool_FromLong(
        peer_wants_notification(&self->h, self->h.used_flags, USED_F_NO_NOTIFY));
}

/* set_interrupts / set_notifications: write one of our suppression flags (0 or ``bit``),
 * then a full fence: the store must be ordered before a following re-check of the peer's
 * index (enable, then look once more). */
static PyObject *
set_suppression(Half *h, const char *fname, PyObject *const *args, Py_ssize_t nargs,
                PyObject *kwnames, size_t off, uint16_t bit)
{
    static const char *const names[] = {"enabled"};
    PyObject *enabled;
    if (nargs == 1 && kwnames == NULL) {
        enabled = args[0];
    }
    else if (bind_args(fname, args, nargs, kwnames, names, 1, 1, &enabled) < 0) {
        return NULL;
    }
    REQUIRE_MEMORY(h);
    int on = PyObject_IsTrue(enabled);
    if (on < 0) {
        return NULL;
    }
    st16_relaxed(h, off, (uint16_t)(on ? 0 : bit));
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    Py_RETURN_NONE;
}

static PyObject *
Driver_set_interrupts(Driver *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return set_suppression(&self->h, "VringDriver.set_interrupts", args, nargs, kwnames,
                           self->h.avail_flags, AVAIL_F_NO_INTERRUPT);
}

static PyMethodDef Driver_methods[] = {
    {"post", (PyCFunction)(void (*)(void))Driver_post, METH_FASTCALL | METH_KEYWORDS,
     "post($self, /, addr, length, *, writable)\n--\n\n"
     "Make one buffer available to the device; returns its descriptor id.\n\n"
     "Raises RingFullError when every descriptor is in flight."},
    {"has_used", (PyCFunction)Driver_has_used, METH_NOARGS,
     "has_used($self, /)\n--\n\nWhether the device returned a buffer not reclaimed yet."},
    {"get_used", (PyCFunction)Driver_get_used, METH_NOARGS,
     "get_used($self, /)\n--\n\n"
     "Reclaim the next used buffer: (id, addr, used_len), or None if none is pending."},
    {"buffer_of", (PyCFunction)(void (*)(void))Driver_buffer_of, METH_FASTCALL | METH_KEYWORDS,
     "buffer_of($self, /, head)\n--\n\n"
     "(addr, len) last posted with descriptor head (from the shadow copy)."},
    {"kick_needed", (PyCFunction)Driver_kick_needed, METH_NOARGS,
     "kick_needed($self, /)\n--\n\n"
     "Whether the device asked to be notified of new buffers (legacy, no EVENT_IDX)."},
    {"set_interrupts", (PyCFunction)(void (*)(void))Driver_set_interrupts,
     METH_FASTCALL | METH_KEYWORDS,
     "set_interrupts($self, /, enabled)\n--\n\n"
     "Ask the device to (not) interrupt us when it returns buffers."},
    {"add_message", (PyCFunction)(void (*)(void))Driver_add_message,
     METH_FASTCALL | METH_KEYWORDS,
     "add_message($self, /, addr, post_len, mem, off, src, dst, flags, payload)\n--\n\n"
     "Write an rpmsg message (16-byte header, then payload) at mem[off:] and post(addr, "
     "post_len, writable=False) it; returns kick_needed(). C classes only: see the module's "
     "'Fused rpmsg message methods' section."},
    {"get_message", (PyCFunction)(void (*)(void))Driver_get_message,
     METH_FASTCALL | METH_KEYWORDS,
     "get_message($self, /, mem, base_da, repost_len)\n--\n\n"
     "get_used(), then the rpmsg message in the buffer (mem holds device addresses from "
     "base_da): (src, dst, flags, payload), 1 (used length < 16) or 2 (header len too "
     "large); the buffer is reposted with post(addr, repost_len, writable=True). None when "
     "nothing is pending. C classes only."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Driver_getset[] = {
    {"layout", (getter)half_get_layout, NULL, "The ring's VringLayout.", NULL},
    {"num", (getter)half_get_num, NULL, "Number of descriptors.", NULL},
    {"num_free", (getter)Driver_get_num_free, NULL, "Descriptors not in flight.", NULL},
    {"num_in_flight", (getter)Driver_get_num_in_flight, NULL, "Descriptors in flight.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject DriverType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "transports._vring_accel.VringDriver",
    .tp_basicsize = sizeof(Driver),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "VringDriver(mem, layout, *, reset=True, start_index=0)\n--\n\n"
              "The driver side of a split vring: posts buffers on the avail ring, reclaims "
              "them from the used ring.\n\n"
              "C equivalent of transports.virtio.vring.PyVringDriver.",
    .tp_new = Driver_new,
    .tp_dealloc = (destructor)Driver_dealloc,
    .tp_traverse = (traverseproc)Driver_traverse,
    .tp_clear = (inquiry)Driver_clear,
    .tp_methods = Driver_methods,
    .tp_getset = Driver_getset,
};

/* ========================================================================================== */
/* VringDevice                                                                                */

static PyObject *
Device_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"mem", "layout", "region_check", "start_index", NULL};
    PyObject *mem, *layout, *check = NULL, *start_index = int_zero;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|$OO:VringDevice", kwlist, &mem, &layout,
                                     &check, &start_index)) {
        return NULL;
    }
    Device *self = (Device *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    if (half_init(&self->h, mem, layout) < 0) {
        goto fail;
    }
    self->check = Py_XNewRef(check);
    long start = masked_index(start_index);
    if (start < 0) {
        goto fail;
    }
    self->last_avail = (uint16_t)start;
    self->next_used = (uint16_t)start;
    self->taken = PyMem_Calloc(self->h.num, 1);
    if (self->taken == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    return (PyObject *)self;

fail:
    Py_DECREF(self);
    return NULL;
}

static int
Device_traverse(Device *self, visitproc visit, void *arg)
{
    Py_VISIT(self->check);
    return half_traverse(&self->h, visit, arg);
}

static int
Device_clear(Device *self)
{
    Py_CLEAR(self->check);
    half_clear(&self->h);
    return 0;
}

static void
Device_dealloc(Device *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->check);
    half_clear(&self->h);
    PyMem_Free(self->taken);
    tp->tp_free((PyObject *)self);
}

static PyObject *
Device_has_avail(Device *self, PyObject *Py_UNUSED(ignored))
{
    REQUIRE_MEMORY(&self->h);
    return PyBool_FromLong(ld16_acquire(&self->h, self->h.avail_idx) != self->last_avail);
}

/* The buffer pool of the fused methods (take_message, put_message): device addresses
 * [base, base + size), size being len(mem). They check buffers against it instead of calling
 * region_check. */
typedef struct {
    uint64_t base;
    uint64_t size;
} Pool;

/* base <= addr and addr + length <= base + size, without overflow. */
static inline int
in_pool(const Pool *pool, uint64_t addr, uint32_t length)
{
    return addr >= pool->base && addr - pool->base <= pool->size &&
           length <= pool->size - (addr - pool->base);
}

/* bool(region_check(addr, length)), or the pool bounds when pool is not NULL (no call then):
 * 1, 0, or -1 with an exception. */
static int
region_ok(Device *self, const Pool *pool, uint64_t addr, uint32_t length)
{
    if (pool != NULL) {
        return in_pool(pool, addr, length);
    }
    if (self->check == NULL) {
        return 1;  /* the pure class's default, _anywhere */
    }
    PyObject *args[2];
    args[0] = PyLong_FromUnsignedLongLong(addr);
    if (args[0] == NULL) {
        return -1;
    }
    args[1] = PyLong_FromUnsignedLong(length);
    if (args[1] == NULL) {
        Py_DECREF(args[0]);
        return -1;
    }
    PyObject *r = PyObject_Vectorcall(self->check, args, 2, NULL);
    Py_DECREF(args[0]);
    Py_DECREF(args[1]);
    if (r == NULL) {
        return -1;
    }
    int ok = PyObject_IsTrue(r);
    Py_DECREF(r);
    return ok;
}

/* The pure _walk: validate the chain starting at head; *first gets the head descriptor's
 * fields; segments (if not NULL) gets every (addr, len, flags); pool: see region_ok. 0, or -1
 * with an exception. */
static int
walk(Device *self, uint32_t head, PyObject *segments, const Pool *pool, Desc *first)
{
    Half *h = &self->h;
    uint32_t num = h->num;
    uint32_t i = head;
    int have_first = 0;
    char msg[200];
    for (uint32_t n = 0; n < num; n++) {
        Desc d = read_desc(h, i);
        if (d.flags & F_INDIRECT) {
            snprintf(msg, sizeof msg, "descriptor %lu: indirect descriptors are not negotiated",
                     (unsigned long)i);
            raise_rpe(msg, (long)head, 1);
            return -1;
        }
        int ok = region_ok(self, pool, d.addr, d.len);
        if (ok < 0) {
            return -1;
        }
        if (!ok) {
            snprintf(msg, sizeof msg,
                     "descriptor %lu: buffer [0x%llx, +0x%lx) is outside the buffer region",
                     (unsigned long)i, (unsigned long long)d.addr, (unsigned long)d.len);
            raise_rpe(msg, (long)head, 1);
            return -1;
        }
        if (!have_first) {
            *first = d;
            have_first = 1;
        }
        if (segments != NULL) {
            PyObject *seg = segment_tuple(&d);
            if (seg == NULL) {
                return -1;
            }
            int rc = PyList_Append(segments, seg);
            Py_DECREF(seg);
            if (rc < 0) {
                return -1;
            }
        }
        if (!(d.flags & F_NEXT)) {
            return 0;
        }
        if (d.next >= num) {
            snprintf(msg, sizeof msg, "descriptor %lu: next %u >= num %lu", (unsigned long)i,
                     (unsigned)d.next, (unsigned long)num);
            raise_rpe(msg, (long)head, 1);
            return -1;
        }
        i = d.next;
    }
    snprintf(msg, sizeof msg, "descriptor chain from %lu loops or is longer than num %lu",
             (unsigned long)head, (unsigned long)num);
    raise_rpe(msg, (long)head, 1);
    return -1;
}

/* The pure _next_head: the next avail entry's descriptor id, marked taken. Returns the id,
 * -1 when the ring is empty, -2 with an exception. */
static long
next_head(Device *self)
{
    Half *h = &self->h;
    char msg[200];
    /* Acquire: the avail slot and descriptor read next are the ones the driver wrote before
     * publishing this index. */
    uint16_t avail_idx = ld16_acquire(h, h->avail_idx);
    uint16_t last = self->last_avail;
    if (avail_idx == last) {
        return -1;
    }
    unsigned pending = (uint16_t)(avail_idx - last);
    if (pending > h->num) {
        snprintf(msg, sizeof msg, "avail.idx moved from %u to %u: %u entries > num %u",
                 (unsigned)last, (unsigned)avail_idx, pending, (unsigned)h->num);
        raise_rpe(msg, -1, 0);
        return -2;
    }
    uint16_t head = ld16_relaxed(h, h->avail_ring + 2 * (size_t)(last & h->mask));
    self->last_avail = (uint16_t)(last + 1);
    if (head >= h->num) {
        snprintf(msg, sizeof msg, "avail entry %u names descriptor %u >= num %u", (unsigned)last,
                 (unsigned)head, (unsigned)h->num);
        raise_rpe(msg, -1, 1);
        return -2;
    }
    if (self->taken[head]) {
        snprintf(msg, sizeof msg, "avail entry %u offers descriptor %u, which is already taken",
                 (unsigned)last, (unsigned)head);
        raise_rpe(msg, -1, 1);
        return -2;
    }
    self->taken[head] = 1;
    self->ntaken++;
    return head;
}

/* The body of take() (shared with take_message and put_message, which pass their pool): 1
 * with *head_out and *first set (the head descriptor's fields), 0 when the ring is empty, -1
 * with an exception (the state changes of the pure class made). */
static int
take_core(Device *self, const Pool *pool, uint32_t *head_out, Desc *first)
{
    Half *h = &self->h;
    long head = next_head(self);
    if (head == -1) {
        return 0;
    }
    if (head < 0) {
        return -1;
    }
    /* Fast path: a single direct descriptor inside the allowed region (every rpmsg buffer).
     * Anything else goes through the full validating walk. */
    Desc d = read_desc(h, (uint32_t)head);
    if (!(d.flags & CHAINED)) {
        int ok = region_ok(self, pool, d.addr, d.len);
        if (ok < 0) {
            return -1;  /* outside the pure class's try: propagated as is */
        }
        if (ok) {
            *head_out = (uint32_t)head;
            *first = d;
            return 1;
        }
    }
    if (walk(self, (uint32_t)head, NULL, pool, first) < 0) {
        mark_consumed();
        return -1;
    }
    *head_out = (uint32_t)head;
    return 1;
}

static PyObject *
Device_take(Device *self, PyObject *Py_UNUSED(ignored))
{
    REQUIRE_MEMORY(&self->h);
    uint32_t head;
    Desc first;
    int got = take_core(self, NULL, &head, &first);
    if (got <= 0) {
        return got == 0 ? Py_NewRef(Py_None) : NULL;
    }
    return take_tuple((long)head, &first);
}

static PyObject *
Device_take_chain(Device *self, PyObject *Py_UNUSED(ignored))
{
    Half *h = &self->h;
    REQUIRE_MEMORY(h);
    long head = next_head(self);
    if (head == -1) {
        Py_RETURN_NONE;
    }
    if (head < 0) {
        return NULL;
    }
    PyObject *segments = PyList_New(0);
    if (segments == NULL) {
        return NULL;
    }
    Desc first;
    if (walk(self, (uint32_t)head, segments, NULL, &first) < 0) {
        Py_DECREF(segments);
        mark_consumed();
        return NULL;
    }
    PyObject *r = Py_BuildValue("(lN)", head, segments);
    return r;
}

static PyObject *
not_taken_error(PyObject *head)
{
    PyObject *text = PyObject_Format(head, empty_str);
    if (text != NULL) {
        PyErr_Format(PyExc_ValueError, "descriptor %U was not taken from this ring", text);
        Py_DECREF(text);
    }
    return NULL;
}

/* The head check of give() for anything but an exact int, step by step as Python evaluates
 * `not 0 <= head < self.num or not self._taken[head]`. Returns the index, -1 (not taken, the
 * ValueError is raised), or -2 with another exception. */
static Py_ssize_t
generic_taken_index(Device *self, PyObject *head)
{
    PyObject *cmp = PyObject_RichCompare(int_zero, head, Py_LE);
    if (cmp == NULL) {
        return -2;
    }
    int t = PyObject_IsTrue(cmp);
    Py_DECREF(cmp);
    if (t < 0) {
        return -2;
    }
    if (t) {
        cmp = PyObject_RichCompare(head, self->h.num_obj, Py_LT);
        if (cmp == NULL) {
            return -2;
        }
        t = PyObject_IsTrue(cmp);
        Py_DECREF(cmp);
        if (t < 0) {
            return -2;
        }
    }
    if (!t) {
        not_taken_error(head);
        return -1;
    }
    /* self._taken[head]: bytearray indexing */
    if (!PyIndex_Check(head)) {
        PyErr_Format(PyExc_TypeError, "bytearray indices must be integers or slices, not %.200s",
                     Py_TYPE(head)->tp_name);
        return -2;
    }
    Py_ssize_t i = PyNumber_AsSsize_t(head, PyExc_IndexError);
    if (i == -1 && PyErr_Occurred()) {
        return -2;
    }
    if (i < 0) {
        i += self->h.num;
    }
    if (i < 0 || i >= (Py_ssize_t)self->h.num) {
        PyErr_SetString(PyExc_IndexError, "bytearray index out of range");
        return -2;
    }
    if (!self->taken[i]) {
        not_taken_error(head);
        return -1;
    }
    return i;
}

/* The end of every give: the used index advanced past the element just written, published
 * with release semantics (a message written, or read, and the element before the index). */
static void
publish_used(Device *self)
{
    uint16_t idx = (uint16_t)(self->next_used + 1);
    self->next_used = idx;
    st16_release(&self->h, self->h.used_idx, idx);
}

/* give(head, length) of a head known to be taken, with plain-int values: cannot fail. */
static void
give_taken(Device *self, uint32_t head, uint32_t length)
{
    Half *h = &self->h;
    self->taken[head] = 0;
    self->ntaken--;
    unsigned char raw[USED_ELEM_SIZE];
    memcpy(raw, &head, 4);
    memcpy(raw + 4, &length, 4);
    memcpy(h->base + h->used_ring + (size_t)USED_ELEM_SIZE * (self->next_used & h->mask), raw,
           USED_ELEM_SIZE);
    publish_used(self);
}

static PyObject *
Device_give(Device *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"head", "length"};
    PyObject *a[2];
    if (nargs == 2 && kwnames == NULL) {
        a[0] = args[0];
        a[1] = args[1];
    }
    else if (bind_args("VringDevice.give", args, nargs, kwnames, names, 2, 2, a) < 0) {
        return NULL;
    }
    PyObject *head_obj = a[0], *length_obj = a[1];
    Half *h = &self->h;
    REQUIRE_MEMORY(h);
    Py_ssize_t head;
    int exact_head = PyLong_CheckExact(head_obj);
    if (exact_head) {
        int overflow;
        long v = PyLong_AsLongAndOverflow(head_obj, &overflow);
        if (overflow || v < 0 || v >= (long)h->num || !self->taken[v]) {
            return not_taken_error(head_obj);
        }
        head = v;
    }
    else {
        head = generic_taken_index(self, head_obj);
        if (head < 0) {
            return NULL;
        }
    }
    uint32_t length;
    if (exact_head && exact_u32(length_obj, &length)) {
        give_taken(self, (uint32_t)head, length);
        Py_RETURN_NONE;
    }
    /* Not plain ints: struct packs them, and raises as the pure class does, after the same
     * state change (the head is no longer taken). */
    self->taken[head] = 0;
    self->ntaken--;
    PyObject *values[2] = {head_obj, length_obj};
    size_t off = h->used_ring + (size_t)USED_ELEM_SIZE * (self->next_used & h->mask);
    if (pack_into(used_pack_into, h, off, values, 2) < 0) {
        return NULL;
    }
    publish_used(self);
    Py_RETURN_NONE;
}

static PyObject *
Device_get_num_taken(Device *self, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLong(self->ntaken);
}

static PyObject *
Device_interrupt_needed(Device *self, PyObject *Py_UNUSED(ignored))
{
    REQUIRE_MEMORY(&self->h);
    /* Full barrier between publishing used.idx and reading avail.flags (see kick_needed). */
    return PyBool_FromLong(
        peer_wants_notification(&self->h, self->h.avail_flags, AVAIL_F_NO_INTERRUPT));
}

static PyObject *
Device_set_notifications(Device *self, PyObject *const *args, Py_ssize_t nargs,
                         PyObject *kwnames)
{
    return set_suppression(&self->h, "VringDevice.set_notifications", args, nargs, kwnames,
                           self->h.used_flags, USED_F_NO_NOTIFY);
}

static PyMethodDef Device_methods[] = {
    {"has_avail", (PyCFunction)Device_has_avail, METH_NOARGS,
     "has_avail($self, /)\n--\n\nWhether the driver made a buffer available not taken yet."},
    {"take", (PyCFunction)Device_take, METH_NOARGS,
     "take($self, /)\n--\n\n"
     "Take the next available buffer: (head, addr, len, flags) of its first descriptor, "
     "after validating the whole chain; None if the ring is empty."},
    {"take_chain", (PyCFunction)Device_take_chain, METH_NOARGS,
     "take_chain($self, /)\n--\n\n"
     "Like take(), but returns (head, [(addr, len, flags), ...]) for the whole chain."},
    {"give", (PyCFunction)(void (*)(void))Device_give, METH_FASTCALL | METH_KEYWORDS,
     "give($self, /, head, length)\n--\n\n"
     "Return descriptor chain head to the driver, length bytes written."},
    {"interrupt_needed", (PyCFunction)Device_interrupt_needed, METH_NOARGS,
     "interrupt_needed($self, /)\n--\n\n"
     "Whether the driver asked to be interrupted when buffers come back."},
    {"set_notifications", (PyCFunction)(void (*)(void))Device_set_notifications,
     METH_FASTCALL | METH_KEYWORDS,
     "set_notifications($self, /, enabled)\n--\n\n"
     "Ask the driver to (not) kick us when it adds buffers."},
    {"take_message", (PyCFunction)(void (*)(void))Device_take_message,
     METH_FASTCALL | METH_KEYWORDS,
     "take_message($self, /, mem, base_da)\n--\n\n"
     "take() with buffers checked against the pool mem (device addresses from base_da) "
     "instead of region_check, then the rpmsg message in it: (src, dst, flags, payload), 1 "
     "(buffer < 16 bytes) or 2 (header len too large); the buffer is given back with its "
     "length. None when the ring is empty. C classes only."},
    {"put_message", (PyCFunction)(void (*)(void))Device_put_message,
     METH_FASTCALL | METH_KEYWORDS,
     "put_message($self, /, mem, base_da, src, dst, flags, payload)\n--\n\n"
     "take() a buffer as take_message does and write an rpmsg message into it: -1 when the "
     "ring is empty, 2 when the buffer is too small or read-only (given back empty), else 1 "
     "if interrupt_needed() and 0 if not. C classes only."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Device_getset[] = {
    {"layout", (getter)half_get_layout, NULL, "The ring's VringLayout.", NULL},
    {"num", (getter)half_get_num, NULL, "Number of descriptors.", NULL},
    {"num_taken", (getter)Device_get_num_taken, NULL, "Descriptors taken, not given back.",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject DeviceType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "transports._vring_accel.VringDevice",
    .tp_basicsize = sizeof(Device),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "VringDevice(mem, layout, *, region_check=..., start_index=0)\n--\n\n"
              "The device side of a split vring: takes buffers from the avail ring, gives "
              "them back on the used ring.\n\n"
              "C equivalent of transports.virtio.vring.PyVringDevice.",
    .tp_new = Device_new,
    .tp_dealloc = (destructor)Device_dealloc,
    .tp_traverse = (traverseproc)Device_traverse,
    .tp_clear = (inquiry)Device_clear,
    .tp_methods = Device_methods,
    .tp_getset = Device_getset,
};

/* ========================================================================================== */
/* Fused rpmsg message methods                                                                */
/*
 * LAYERING EXCEPTION, deliberate. Everything above is a generic virtio split ring; the four
 * methods of this section also know the rpmsg message format, the 16-byte header of every
 * rpmsg buffer (drivers/rpmsg/virtio_rpmsg_bus.c; rpmsg/wire.py's RPMSG_HDR, "<IIIHH"):
 *
 *     struct rpmsg_hdr { le32 src; le32 dst; le32 reserved; le16 len; le16 flags; u8 data[]; }
 *
 * Why: with the ring operations in C (about 0.1 us each), the Python glue of the rpmsg rings
 * around them (header pack/unpack, the payload slice copy, address arithmetic, three or four
 * calls per message) cost about 3 us per send + receive. Each method here does one side's whole
 * per-message work in a single call:
 *
 *     VringDriver.add_message   the host sends     (header + payload, post, kick_needed)
 *     VringDriver.get_message   the host receives  (get_used, parse, copy, repost)
 *     VringDevice.take_message  the remote receives (take, parse, copy, give)
 *     VringDevice.put_message   the remote sends   (take, header + payload, give,
 *                                                   interrupt_needed)
 *
 * The pure classes have the same four methods (transports/virtio/messages.py), their
 * reference, and the rpmsg rings call one of them per message whichever implementation runs. Each equals a
 * sequence of pure-class calls plus the header glue (written out in tests/unit/test_vring_accel.py,
 * which checks both implementations against it under hostile ring and pool contents); the
 * ring part of each is the very code of the method it fuses (get_used_core, take_core,
 * post_commit, give_taken).
 *
 * Common rules:
 * - mem is the buffer pool: any C-contiguous buffer, writable for add_message and put_message,
 *   whose byte i is at device address base_da + i. payload is any C-contiguous buffer of any
 *   format and shape (get_payload; a strided one is a BufferError); its length is its size in
 *   BYTES, taken from the buffer itself, never from a length the caller passes. Both are held
 *   (PyObject_GetBuffer) for the duration of the call only.
 * - A message is written only into the buffer it goes out in: add_message refuses one longer
 *   than post_len (ValueError), put_message gives back a buffer shorter than it (result 2).
 * - Integer arguments are converted as struct's "<Q" (addr, base_da), "<I" (post_len,
 *   repost_len, src, dst) and "<H" (flags) would convert them: out of range or not an integer
 *   raises the same struct.error as post() does for its addr and length. off (add_message) is
 *   an index: TypeError if it is not an integer, ValueError when the message does not fit mem
 *   from there. A payload over 0xFFFF bytes (the header's u16 len) is a ValueError.
 * - Every argument is checked before anything changes: an argument error leaves the ring's
 *   state, the ring memory and mem untouched.
 * - Nothing outside mem, the payload and the ring is read or written: a buffer is accessed
 *   only once its whole extent is known to lie in mem. A received header is copied out of
 *   shared memory once; only the copy is validated and used.
 * - Memory ordering as in the methods fused: a message is written before the release store of
 *   the index that publishes it; the peer's index is loaded with acquire before the entries
 *   and buffers it covers are read; a received payload is copied before the buffer goes back;
 *   kick_needed()'s and interrupt_needed()'s full barrier comes before the peer's flags are
 *   read.
 * - Allocation: the result tuple and the payload bytes only (plus, as post() does, the arrays
 *   keeping non-int arguments, on their first use).
 */

#define RPMSG_HDR_SIZE 16
#define RPMSG_MAX_PAYLOAD 0xFFFF

typedef struct {
    uint32_t src;
    uint32_t dst;
    uint16_t len;
    uint16_t flags;
} RpmsgHdr;

/* The header at p (16 readable bytes), read once. reserved is ignored (OpenAMP uses it). */
static inline RpmsgHdr
read_hdr(const unsigned char *p)
{
    unsigned char raw[RPMSG_HDR_SIZE];
    RpmsgHdr hdr;
    copy_from_shared(raw, p, RPMSG_HDR_SIZE);
    memcpy(&hdr.src, raw, 4);
    memcpy(&hdr.dst, raw + 4, 4);
    memcpy(&hdr.len, raw + 12, 2);
    memcpy(&hdr.flags, raw + 14, 2);
    return hdr;
}

/* Header (reserved = 0) then payload at p, which has room for 16 + n bytes. The payload is
 * copied after the header is written and with memmove, as the Python glue's
 * `RPMSG_HDR.pack_into(...); mem[off + 16 : off + 16 + n] = payload` does: the payload may be
 * a view of mem itself. */
static inline void
write_message(unsigned char *p, uint32_t src, uint32_t dst, uint16_t flags,
              const void *payload, size_t n)
{
    unsigned char raw[RPMSG_HDR_SIZE];
    uint32_t reserved = 0;
    uint16_t len = (uint16_t)n;
    memcpy(raw, &src, 4);
    memcpy(raw + 4, &dst, 4);
    memcpy(raw + 8, &reserved, 4);
    memcpy(raw + 12, &len, 2);
    memcpy(raw + 14, &flags, 2);
    memcpy(p, raw, RPMSG_HDR_SIZE);
    if (n > 0) {
        memmove(p + RPMSG_HDR_SIZE, payload, n);
    }
}

/* (src, dst, flags, payload): a received message; the payload is copied from shared memory. */
static PyObject *message_tuple(const RpmsgHdr *hdr, const unsigned char *payload);

/* The received buffer of ``length`` bytes at ``p``: 1 when it cannot hold a header, 2 when
 * the header claims more payload than the buffer holds, else (src, dst, flags, payload). */
static PyObject *
parse_message(const unsigned char *p, uint32_t length)
{
    if (length < RPMSG_HDR_SIZE) {
        return PyLong_FromLong(1);
    }
    RpmsgHdr hdr = read_hdr(p);
    if (hdr.len > length - RPMSG_HDR_SIZE) {
        return PyLong_FromLong(2);
    }
    return message_tuple(&hdr, p + RPMSG_HDR_SIZE);
}

static PyObject *
message_tuple(const RpmsgHdr *hdr, const unsigned char *payload)
{
    PyObject *items[4] = {
        PyLong_FromUnsignedLong(hdr->src),
        PyLong_FromUnsignedLong(hdr->dst),
        PyLong_FromLong(hdr->flags),
        PyBytes_FromStringAndSize((const char *)payload, hdr->len),
    };
    return steal_tuple(4, items);
}

/* An integer argument converted as the struct format of nbytes bytes whose pack is `pack`
 * would: exact ints in range here, anything else by struct itself (its exception and message;
 * an __index__ method is called once). 0, or -1 with an exception. */
static int
int_arg(PyObject *v, PyObject *pack, unsigned nbytes, uint64_t *out)
{
    if (PyLong_CheckExact(v)) {
        int overflow;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (!overflow && x >= 0 &&
            (nbytes == 8 || ((unsigned long long)x >> (8 * nbytes)) == 0)) {
            *out = (uint64_t)x;
            return 0;
        }
    }
    PyObject *packed = PyObject_CallOneArg(pack, v);
    if (packed == NULL) {
        return -1;
    }
    if (!PyBytes_Check(packed) || PyBytes_GET_SIZE(packed) != (Py_ssize_t)nbytes) {
        Py_DECREF(packed);
        PyErr_SetString(PyExc_SystemError, "struct returned an unexpected result");
        return -1;
    }
    uint64_t x = 0;
    memcpy(&x, PyBytes_AS_STRING(packed), nbytes);  /* little-endian host */
    Py_DECREF(packed);
    *out = x;
    return 0;
}

/* Hold the payload's buffer: any exporter, any format and shape, as long as its memory is one
 * C-contiguous run; payload->len is then its size in BYTES (never the item count len() gives)
 * and the only length the caller may use. A strided buffer is refused here with our own
 * message, whatever its exporter would say (the format and strides are requested so that no
 * exporter refuses first). 0, or -1 with an exception and nothing held. */
static int
get_payload(PyObject *obj, Py_buffer *payload)
{
    if (PyObject_GetBuffer(obj, payload, PyBUF_FULL_RO) < 0) {
        return -1;
    }
    if (!PyBuffer_IsContiguous(payload, 'C')) {
        PyBuffer_Release(payload);
        PyErr_SetString(PyExc_BufferError,
                        "payload is not C-contiguous: its bytes are not one run of memory");
        return -1;
    }
    if (payload->len > RPMSG_MAX_PAYLOAD) {
        PyErr_Format(PyExc_ValueError,
                     "payload of %zd bytes does not fit an rpmsg message (at most %d bytes)",
                     payload->len, RPMSG_MAX_PAYLOAD);
        PyBuffer_Release(payload);
        return -1;
    }
    return 0;
}

/* ---- the driver: post() in two steps, add_message, get_message --------------------------- */

/* post()'s steps that can fail, done before anything changes: RingFullError when every
 * descriptor is in flight, and (keep_objects) the arrays keeping non-int arguments. 0 or -1. */
static int
post_reserve(Driver *self, int keep_objects)
{
    if (self->nfree == 0) {
        PyErr_Format(RingFullError, "all %u descriptors are in flight", (unsigned)self->h.num);
        return -1;
    }
    return keep_objects ? ensure_kept_arrays(self) : 0;
}

/* The rest of post(addr, length, writable=writable), which cannot fail (right after
 * post_reserve, nothing in between): the same descriptor, shadow state and publication.
 * addr_keep / len_keep: the argument objects post() keeps because they are not exact ints
 * (NULL for an exact int: its value is kept). */
static void
post_commit(Driver *self, uint64_t addr, uint32_t length, PyObject *addr_keep,
            PyObject *len_keep, int writable)
{
    Half *h = &self->h;
    uint32_t head = self->free_ids[--self->nfree];
    write_desc(h, head, addr, length, writable ? F_WRITE : 0);
    self->addr[head] = addr;
    self->len[head] = length;
    if (self->addr_obj != NULL) {
        Py_XSETREF(self->addr_obj[head], Py_XNewRef(addr_keep));
        Py_XSETREF(self->len_obj[head], Py_XNewRef(len_keep));
    }
    self->write[head] = writable ? 1 : 0;
    publish_avail(self, head);
}

static PyObject *
Driver_add_message(Driver *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"addr", "post_len", "mem",   "off",
                                        "src",  "dst",      "flags", "payload"};
    PyObject *a[8];
    if (nargs == 8 && kwnames == NULL) {
        memcpy(a, args, sizeof a);
    }
    else if (bind_args("VringDriver.add_message", args, nargs, kwnames, names, 8, 8, a) < 0) {
        return NULL;
    }
    Half *h = &self->h;
    REQUIRE_MEMORY(h);
    if (self->nfree == 0) {
        PyErr_Format(RingFullError, "all %u descriptors are in flight", (unsigned)h->num);
        return NULL;
    }
    PyObject *result = NULL;
    Py_buffer payload, mem;
    int have_mem = 0;
    if (get_payload(a[7], &payload) < 0) {
        return NULL;
    }
    Py_ssize_t off = PyNumber_AsSsize_t(a[3], NULL);  /* clamped: out of range below */
    if (off == -1 && PyErr_Occurred()) {
        goto done;
    }
    if (get_contiguous(a[2], &mem, PyBUF_WRITABLE) < 0) {
        goto done;
    }
    have_mem = 1;
    if (off < 0 || off > mem.len || mem.len - off < RPMSG_HDR_SIZE + payload.len) {
        PyErr_Format(PyExc_ValueError,
                     "message of %zd bytes at offset %R does not fit the %zd-byte buffer pool",
                     RPMSG_HDR_SIZE + payload.len, a[3], mem.len);
        goto done;
    }
    /* In the order the Python glue packs them: the header's fields, then post()'s. */
    uint64_t src, dst, flags, addr, post_len;
    if (int_arg(a[4], pack_u32, 4, &src) < 0 || int_arg(a[5], pack_u32, 4, &dst) < 0 ||
        int_arg(a[6], pack_u16, 2, &flags) < 0 || int_arg(a[0], pack_u64, 8, &addr) < 0 ||
        int_arg(a[1], pack_u32, 4, &post_len) < 0) {
        goto done;
    }
    /* The message must fit the buffer it is posted as: never write past what the peer is
     * told it may read (a too-long payload would spill into the next pool buffer). */
    if ((uint64_t)(RPMSG_HDR_SIZE + payload.len) > post_len) {
        PyErr_Format(PyExc_ValueError,
                     "message of %zd bytes does not fit the posted length %lu",
                     RPMSG_HDR_SIZE + payload.len, (unsigned long)post_len);
        goto done;
    }
    PyObject *addr_keep = PyLong_CheckExact(a[0]) ? NULL : a[0];
    PyObject *len_keep = PyLong_CheckExact(a[1]) ? NULL : a[1];
    /* Again: Python code (an __index__) may have run since the first check. */
    if (post_reserve(self, addr_keep != NULL || len_keep != NULL) < 0) {
        goto done;
    }
    write_message((unsigned char *)mem.buf + off, (uint32_t)src, (uint32_t)dst,
                  (uint16_t)flags, payload.buf, (size_t)payload.len);
    post_commit(self, addr, (uint32_t)post_len, addr_keep, len_keep, 0);
    result = PyBool_FromLong(peer_wants_notification(h, h->used_flags, USED_F_NO_NOTIFY));
done:
    if (have_mem) {
        PyBuffer_Release(&mem);
    }
    PyBuffer_Release(&payload);
    return result;
}

static PyObject *
Driver_get_message(Driver *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"mem", "base_da", "repost_len"};
    PyObject *a[3];
    if (nargs == 3 && kwnames == NULL) {
        memcpy(a, args, sizeof a);
    }
    else if (bind_args("VringDriver.get_message", args, nargs, kwnames, names, 3, 3, a) < 0) {
        return NULL;
    }
    Half *h = &self->h;
    REQUIRE_MEMORY(h);
    uint64_t base, repost_len;
    if (int_arg(a[1], pack_u64, 8, &base) < 0 || int_arg(a[2], pack_u32, 4, &repost_len) < 0) {
        return NULL;
    }
    Py_buffer mem;
    if (get_contiguous(a[0], &mem, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *result = NULL, *addr_keep = NULL;
    uint32_t head, used_len;
    int got = get_used_core(self, &head, &used_len);
    if (got <= 0) {
        result = got == 0 ? Py_NewRef(Py_None) : NULL;
        goto done;
    }
    uint64_t addr = self->addr[head];
    if (self->addr_obj != NULL && self->addr_obj[head] != NULL) {
        /* Posted as a non-int (an __index__ object): post() keeps it and so does the
         * repost; its value is what struct made of it. */
        addr_keep = Py_NewRef(self->addr_obj[head]);
        if (int_arg(addr_keep, pack_u64, 8, &addr) < 0) {
            goto done;
        }
    }
    /* Not a buffer of this pool: a caller bug (the buffers are the caller's own), refused
     * before anything is read. get_used's state change stands (the descriptor is free again)
     * and the buffer is NOT reposted. */
    Pool pool = {base, (uint64_t)mem.len};
    uint32_t need = used_len < RPMSG_HDR_SIZE ? RPMSG_HDR_SIZE : used_len;
    if (!in_pool(&pool, addr, need)) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "used buffer [0x%llx, +0x%lx) is outside the buffer pool [0x%llx, +0x%llx)",
                 (unsigned long long)addr, (unsigned long)need, (unsigned long long)base,
                 (unsigned long long)mem.len);
        PyErr_SetString(PyExc_ValueError, msg);
        goto done;
    }
    result = parse_message((const unsigned char *)mem.buf + (addr - base), used_len);
    /* Repost the buffer, after its payload was copied: post(addr, repost_len, writable=True),
     * also when building the result failed (the glue's `finally`; that error is kept). */
    PyObject *len_keep = PyLong_CheckExact(a[2]) ? NULL : a[2];
    PyObject *et = NULL, *ev = NULL, *etb = NULL;
    if (result == NULL) {
        PyErr_Fetch(&et, &ev, &etb);
    }
    if (post_reserve(self, addr_keep != NULL || len_keep != NULL) < 0) {
        Py_CLEAR(result);
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(etb);
        goto done;
    }
    post_commit(self, addr, (uint32_t)repost_len, addr_keep, len_keep, 1);
    if (result == NULL) {
        PyErr_Restore(et, ev, etb);
    }
done:
    Py_XDECREF(addr_keep);
    PyBuffer_Release(&mem);
    return result;
}

/* ---- the device: give() of a taken head, take_message, put_message ----------------------- */

static PyObject *
Device_take_message(Device *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"mem", "base_da"};
    PyObject *a[2];
    if (nargs == 2 && kwnames == NULL) {
        memcpy(a, args, sizeof a);
    }
    else if (bind_args("VringDevice.take_message", args, nargs, kwnames, names, 2, 2, a) < 0) {
        return NULL;
    }
    REQUIRE_MEMORY(&self->h);
    uint64_t base;
    if (int_arg(a[1], pack_u64, 8, &base) < 0) {
        return NULL;
    }
    Py_buffer mem;
    if (get_contiguous(a[0], &mem, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *result;
    Pool pool = {base, (uint64_t)mem.len};
    uint32_t head;
    Desc d;
    int got = take_core(self, &pool, &head, &d);
    if (got <= 0) {
        result = got == 0 ? Py_NewRef(Py_None) : NULL;
        goto done;
    }
    /* take_core checked [d.addr, d.addr + d.len) against the pool. */
    result = parse_message((const unsigned char *)mem.buf + (d.addr - base), d.len);
    /* Given back after the payload was copied; also when building the result failed. */
    give_taken(self, head, d.len);
done:
    PyBuffer_Release(&mem);
    return result;
}

static PyObject *
Device_put_message(Device *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"mem", "base_da", "src", "dst", "flags", "payload"};
    PyObject *a[6];
    if (nargs == 6 && kwnames == NULL) {
        memcpy(a, args, sizeof a);
    }
    else if (bind_args("VringDevice.put_message", args, nargs, kwnames, names, 6, 6, a) < 0) {
        return NULL;
    }
    Half *h = &self->h;
    REQUIRE_MEMORY(h);
    PyObject *result = NULL;
    Py_buffer payload, mem;
    int have_mem = 0;
    if (get_payload(a[5], &payload) < 0) {
        return NULL;
    }
    uint64_t base, src, dst, flags;
    if (int_arg(a[1], pack_u64, 8, &base) < 0 || int_arg(a[2], pack_u32, 4, &src) < 0 ||
        int_arg(a[3], pack_u32, 4, &dst) < 0 || int_arg(a[4], pack_u16, 2, &flags) < 0) {
        goto done;
    }
    if (get_contiguous(a[0], &mem, PyBUF_WRITABLE) < 0) {
        goto done;
    }
    have_mem = 1;
    Pool pool = {base, (uint64_t)mem.len};
    uint32_t head;
    Desc d;
    int got = take_core(self, &pool, &head, &d);
    if (got <= 0) {
        result = got == 0 ? PyLong_FromLong(-1) : NULL;
        goto done;
    }
    size_t n = (size_t)payload.len;
    if (d.len < RPMSG_HDR_SIZE + n || !(d.flags & F_WRITE)) {
        /* Too small or read-only: given back empty; the caller counts it and calls again. */
        give_taken(self, head, 0);
        result = PyLong_FromLong(2);
        goto done;
    }
    /* take_core checked [d.addr, d.addr + d.len) against the pool, and 16 + n <= d.len. */
    write_message((unsigned char *)mem.buf + (d.addr - base), (uint32_t)src, (uint32_t)dst,
                  (uint16_t)flags, payload.buf, n);
    give_taken(self, head, (uint32_t)(RPMSG_HDR_SIZE + n));
    result = PyLong_FromLong(peer_wants_notification(h, h->avail_flags, AVAIL_F_NO_INTERRUPT));
done:
    if (have_mem) {
        PyBuffer_Release(&mem);
    }
    PyBuffer_Release(&payload);
    return result;
}

/* ========================================================================================== */
/* Module                                                                                     */

static struct PyModuleDef accel_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "transports._vring_accel",
    .m_doc = "C accelerator for transports.virtio.vring: VringDriver and VringDevice, drop-in "
             "equivalents of PyVringDriver and PyVringDevice.",
    .m_size = -1,
};

static PyObject *
struct_method(PyObject *struct_mod, const char *fmt, const char *method)
{
    PyObject *s = PyObject_CallMethod(struct_mod, "Struct", "s", fmt);
    if (s == NULL) {
        return NULL;
    }
    PyObject *m = PyObject_GetAttrString(s, method);
    Py_DECREF(s);
    return m;
}

PyMODINIT_FUNC
PyInit__vring_accel(void)
{
    const char *pure = getenv("AIOAMP_PURE_PYTHON");
    if (pure != NULL && pure[0] != '\0' && strcmp(pure, "0") != 0) {
        PyErr_Format(PyExc_ImportError,
                     "transports._vring_accel is disabled by AIOAMP_PURE_PYTHON=%s", pure);
        return NULL;
    }
    if (RemoteProtocolError == NULL) {
        PyObject *errors = PyImport_ImportModule("transports.errors");
        if (errors == NULL) {
            return NULL;
        }
        RemoteProtocolError = PyObject_GetAttrString(errors, "RemoteProtocolError");
        RingFullError = PyObject_GetAttrString(errors, "RingFullError");
        Py_DECREF(errors);
        if (RemoteProtocolError == NULL || RingFullError == NULL) {
            Py_CLEAR(RemoteProtocolError);
            Py_CLEAR(RingFullError);
            return NULL;
        }
        PyObject *struct_mod = PyImport_ImportModule("struct");
        if (struct_mod == NULL) {
            return NULL;
        }
        desc_pack_into = struct_method(struct_mod, "<QIHH", "pack_into");
        used_pack_into = struct_method(struct_mod, "<II", "pack_into");
        pack_u64 = struct_method(struct_mod, "<Q", "pack");
        pack_u32 = struct_method(struct_mod, "<I", "pack");
        pack_u16 = struct_method(struct_mod, "<H", "pack");
        Py_DECREF(struct_mod);
        kwnames_head_consumed = Py_BuildValue("(ss)", "head", "consumed");
        str_writable = PyUnicode_InternFromString("writable");
        int_zero = PyLong_FromLong(0);
        int_write = PyLong_FromLong(F_WRITE);
        empty_str = PyUnicode_FromString("");
        if (!desc_pack_into || !used_pack_into || !pack_u64 || !pack_u32 || !pack_u16 ||
            !kwnames_head_consumed || !str_writable || !int_zero || !int_write || !empty_str) {
            return NULL;
        }
    }
    if (PyType_Ready(&DriverType) < 0 || PyType_Ready(&DeviceType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&accel_module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "VringDriver", (PyObject *)&DriverType) < 0 ||
        PyModule_AddObjectRef(m, "VringDevice", (PyObject *)&DeviceType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
