/* audio._lane: the fast lane's per-packet loop in C (audio.fastlane has the whole story).
 *
 * For every listener on the fast lane, one call per packet:
 *   1. copies the listener's RTP header template into the listener's own buffer and stamps
 *      it (sequence, timestamp, abs-send-time), then copies the Opus payload after it;
 *   2. protects it in place with libsrtp's srtp_protect, on the very srtp_t that aiortc's
 *      DTLS transport made for the connection (so the rollover counter is shared);
 *   3. queues it on the thread's io_uring submission ring (audio.uring) and sends the whole
 *      batch with one io_uring_enter, or sends it with sendto when there is no ring.
 *
 * The Python loop (RtpStream.send) does the same per listener at about 5 us a packet; this
 * one costs about what libsrtp and the kernel do. Everything else stays in Python: when a
 * listener goes onto or leaves the lane, sender reports, the lane's checks.
 *
 * libsrtp comes from pylibsrtp (aiortc's binding): the module is handed srtp_protect's
 * address with bind() instead of linking to it, so building needs no libsrtp headers.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#ifdef __linux__
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define BUFFER_SIZE 1500
#define SRTP_TRAILER 16 /* the longest trailer srtp_protect appends (AES-CM + HMAC-SHA1-80) */
#define HEADER_MAX 128

typedef int (*srtp_protect_fn)(void *ctx, void *rtp_header, int *length);
static srtp_protect_fn srtp_protect = NULL;
static PyObject *fileno_name = NULL;

/* -- io_uring, as audio.uring lays it out --------------------------------------------- */

struct sqe { /* struct io_uring_sqe, as far as IORING_OP_SENDMSG uses it */
    uint8_t opcode, flags;
    uint16_t ioprio;
    int32_t fd;
    uint64_t off, addr;
    uint32_t len, msg_flags;
    uint64_t user_data;
    uint16_t buf_index, personality;
    int32_t file_index;
    uint64_t addr3, pad;
};
_Static_assert(sizeof(struct sqe) == 64, "io_uring_sqe is 64 bytes");

struct cqe {
    uint64_t user_data;
    int32_t res;
    uint32_t flags;
};

#define OP_SENDMSG 9
#define ENTER_GETEVENTS 1

typedef struct {
    int fd;
    unsigned int entries, sq_mask, cq_mask;
    struct sqe *sqes;
    uint32_t *sq_tail, *cq_head, *cq_tail;
    struct cqe *cqes;
} Ring;

/* -- Lane: one listener's way out ------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    void *srtp;
    PyObject *sock;
    int fd;
    char active;
    unsigned short sequence;
    unsigned int origin;
    unsigned long long packets, octets, errors;
    Py_ssize_t size, abs_at;
    struct sockaddr_storage address;
    socklen_t address_length;
    struct iovec iov;
    struct msghdr msg;
    unsigned char header[HEADER_MAX];
    _Alignas(16) unsigned char buffer[BUFFER_SIZE];
} Lane;

static int
Lane_init(Lane *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {
        "srtp", "sock", "address", "header", "abs_at", "sequence", "origin", NULL};
    unsigned long long srtp;
    PyObject *sock;
    Py_buffer address, header;
    Py_ssize_t abs_at;
    unsigned int sequence, origin;
    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "KOy*y*nII:Lane", keywords, &srtp, &sock, &address, &header,
            &abs_at, &sequence, &origin))
        return -1;
    int result = -1;
    if (address.len <= 0 || (size_t)address.len > sizeof(self->address)) {
        PyErr_SetString(PyExc_ValueError, "address is not a sockaddr");
        goto done;
    }
    if (header.len < 12 || header.len > HEADER_MAX) {
        PyErr_SetString(PyExc_ValueError, "header is not an RTP header");
        goto done;
    }
    if (abs_at != 0 && (abs_at < 12 || abs_at + 3 > header.len)) {
        PyErr_SetString(PyExc_ValueError, "abs_at is outside the header");
        goto done;
    }
    if (!srtp || sequence > 0xFFFF) {
        PyErr_SetString(PyExc_ValueError, "no srtp session, or a sequence above 65535");
        goto done;
    }
    PyObject *fd = PyObject_CallMethodNoArgs(sock, fileno_name);
    if (fd == NULL)
        goto done;
    long number = PyLong_AsLong(fd);
    Py_DECREF(fd);
    if (number == -1 && PyErr_Occurred())
        goto done;
    if (number < 0 || number > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "the socket is closed");
        goto done;
    }
    Py_XSETREF(self->sock, Py_NewRef(sock));
    self->srtp = (void *)(uintptr_t)srtp;
    self->fd = (int)number;
    self->active = 1;
    self->sequence = (unsigned short)sequence;
    self->origin = origin;
    self->packets = self->octets = self->errors = 0;
    memcpy(self->header, header.buf, header.len);
    self->size = header.len;
    self->abs_at = abs_at;
    memcpy(&self->address, address.buf, address.len);
    self->address_length = (socklen_t)address.len;
    self->iov.iov_base = self->buffer;
    self->iov.iov_len = 0;
    memset(&self->msg, 0, sizeof(self->msg));
    self->msg.msg_name = &self->address;
    self->msg.msg_namelen = self->address_length;
    self->msg.msg_iov = &self->iov;
    self->msg.msg_iovlen = 1;
    result = 0;
done:
    PyBuffer_Release(&address);
    PyBuffer_Release(&header);
    return result;
}

static int
Lane_traverse(Lane *self, visitproc visit, void *arg)
{
    Py_VISIT(self->sock);
    return 0;
}

static int
Lane_clear(Lane *self)
{
    Py_CLEAR(self->sock);
    return 0;
}

static void
Lane_dealloc(Lane *self)
{
    PyObject_GC_UnTrack(self);
    Lane_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef Lane_members[] = {
    {"active", T_BOOL, offsetof(Lane, active), 0,
     "False stops sending on this lane (the stream left it)."},
    {"sequence", T_USHORT, offsetof(Lane, sequence), 0, "The next RTP sequence number."},
    {"origin", T_UINT, offsetof(Lane, origin), READONLY, "The RTP timestamp of pts 0."},
    {"packets", T_ULONGLONG, offsetof(Lane, packets), READONLY, "Packets stamped here."},
    {"octets", T_ULONGLONG, offsetof(Lane, octets), READONLY, "Their payload bytes."},
    {"errors", T_ULONGLONG, offsetof(Lane, errors), READONLY,
     "Packets lost here: libsrtp refused, the socket closed, the kernel refused."},
    {NULL}};

static PyTypeObject LaneType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "audio._lane.Lane",
    .tp_doc = PyDoc_STR(
        "Lane(srtp, sock, address, header, abs_at, sequence, origin): one listener's "
        "fast-lane state, sent to by send()."),
    .tp_basicsize = sizeof(Lane),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Lane_init,
    .tp_dealloc = (destructor)Lane_dealloc,
    .tp_traverse = (traverseproc)Lane_traverse,
    .tp_clear = (inquiry)Lane_clear,
    .tp_members = Lane_members,
};

/* -- send ------------------------------------------------------------------------------ */

#ifdef __linux__
/* Sends the `count` entries queued up to `tail` and counts the ones the kernel refused on
   their lanes (user_data is the lane's index in `lanes`). -1 with an OSError set when the
   ring itself failed. */
static Py_ssize_t
submit(const Ring *ring, uint32_t tail, unsigned int count, PyObject *lanes)
{
    __atomic_store_n(ring->sq_tail, tail, __ATOMIC_RELEASE);
    long entered = -1;
    for (int attempt = 0; attempt < 3; attempt++) {
        /* Non-blocking sockets: every send completes inside this call. */
        entered = syscall(__NR_io_uring_enter, ring->fd, count, count, ENTER_GETEVENTS, NULL, 0);
        if (entered >= 0 || errno != EINTR)
            break;
    }
    if (entered < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    uint32_t head = *ring->cq_head;
    uint32_t end = __atomic_load_n(ring->cq_tail, __ATOMIC_ACQUIRE);
    Py_ssize_t failed = 0, completed = 0, size = PyList_GET_SIZE(lanes);
    for (; head != end; head++, completed++) {
        const struct cqe *done = &ring->cqes[head & ring->cq_mask];
        if (done->res < 0) {
            failed++;
            if ((Py_ssize_t)done->user_data < size)
                ((Lane *)PyList_GET_ITEM(lanes, done->user_data))->errors++;
        }
    }
    __atomic_store_n(ring->cq_head, head, __ATOMIC_RELEASE);
    if (completed < (Py_ssize_t)count)
        failed += count - completed;
    return failed;
}
#endif

static int
parse_ring(PyObject *spec, Ring *ring)
{
    unsigned long long sqes, sq_tail, cq_head, cq_tail, cqes;
    if (!PyArg_ParseTuple(
            spec, "iIIIKKKKK:ring", &ring->fd, &ring->entries, &ring->sq_mask, &ring->cq_mask,
            &sqes, &sq_tail, &cq_head, &cq_tail, &cqes))
        return -1;
    if (!ring->entries || ring->entries > ring->sq_mask + 1) {
        PyErr_SetString(PyExc_ValueError, "ring: entries do not fit the submission ring");
        return -1;
    }
    ring->sqes = (struct sqe *)(uintptr_t)sqes;
    ring->sq_tail = (uint32_t *)(uintptr_t)sq_tail;
    ring->cq_head = (uint32_t *)(uintptr_t)cq_head;
    ring->cq_tail = (uint32_t *)(uintptr_t)cq_tail;
    ring->cqes = (struct cqe *)(uintptr_t)cqes;
    return 0;
}

PyDoc_STRVAR(send_doc,
"send(lanes, payload, offset, abs_send_time, ring) -> (sent, failed, idle)\n\n"
"Stamp, protect and send one packet on every active lane of the list `lanes`: `offset` is\n"
"the packet's RTP timestamp before each lane's origin, `abs_send_time` the 3 bytes of\n"
"the abs-send-time extension. `ring` is audio.uring's DatagramBatch.native tuple, or None to send\n"
"each datagram with sendto. Returns how many datagrams the ring sent and how many it\n"
"failed (0, 0 without one), and how many lanes were not active; a lost packet is counted\n"
"on its lane's `errors`.");

static PyObject *
lane_send(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "send takes 5 arguments (%zd given)", nargs);
        return NULL;
    }
    if (!PyList_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "send: lanes must be a list");
        return NULL;
    }
    if (srtp_protect == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "send: bind() srtp_protect first");
        return NULL;
    }
    uint32_t offset = (uint32_t)PyLong_AsUnsignedLongMask(args[2]);
    if (offset == (uint32_t)-1 && PyErr_Occurred())
        return NULL;
    unsigned char abs_send_time[3];
    if (!PyBytes_Check(args[3]) || PyBytes_GET_SIZE(args[3]) != 3) {
        PyErr_SetString(PyExc_TypeError, "send: abs_send_time must be 3 bytes");
        return NULL;
    }
    memcpy(abs_send_time, PyBytes_AS_STRING(args[3]), 3);
    Ring ring;
    int use_ring = args[4] != Py_None;
#ifndef __linux__
    if (use_ring) {
        PyErr_SetString(PyExc_OSError, "send: io_uring is Linux's");
        return NULL;
    }
#endif
    if (use_ring && parse_ring(args[4], &ring) < 0)
        return NULL;
    Py_buffer payload;
    if (PyObject_GetBuffer(args[1], &payload, PyBUF_SIMPLE) < 0)
        return NULL;
    /* Our own copy of the list: the kernel reads each queued lane's msghdr until the batch
       is sent, so no lane may go away meanwhile, whatever Python code runs (fileno()). */
    PyObject *lanes = PyList_GetSlice(args[0], 0, PyList_GET_SIZE(args[0]));
    if (lanes == NULL) {
        PyBuffer_Release(&payload);
        return NULL;
    }

    Py_ssize_t count = PyList_GET_SIZE(lanes), sent = 0, failed = 0, idle = 0;
    unsigned int queued = 0;
    uint32_t tail = use_ring ? *ring.sq_tail : 0;
    for (Py_ssize_t index = 0; index < count; index++) {
        PyObject *item = PyList_GET_ITEM(lanes, index);
        if (!Py_IS_TYPE(item, &LaneType)) {
            PyErr_SetString(PyExc_TypeError, "send: lanes holds something not a Lane");
            goto fail;
        }
        Lane *lane = (Lane *)item;
        if (!lane->active) {
            idle++;
            continue;
        }
        Py_ssize_t length = lane->size + payload.len;
        if (length > BUFFER_SIZE - SRTP_TRAILER) {
            lane->errors++; /* no Opus packet is this big (RFC 6716: 1,275 bytes a frame) */
            continue;
        }
        unsigned char *buffer = lane->buffer;
        uint16_t sequence = lane->sequence;
        uint32_t timestamp = lane->origin + offset;
        memcpy(buffer, lane->header, lane->size);
        buffer[2] = sequence >> 8;
        buffer[3] = sequence & 0xFF;
        buffer[4] = timestamp >> 24;
        buffer[5] = (timestamp >> 16) & 0xFF;
        buffer[6] = (timestamp >> 8) & 0xFF;
        buffer[7] = timestamp & 0xFF;
        if (lane->abs_at)
            memcpy(buffer + lane->abs_at, abs_send_time, 3);
        memcpy(buffer + lane->size, payload.buf, payload.len);
        lane->sequence = (unsigned short)(sequence + 1);
        lane->packets++;
        lane->octets += payload.len;
        int protected_length = (int)length;
        if (srtp_protect(lane->srtp, buffer, &protected_length) != 0) {
            lane->errors++; /* libsrtp refused (replay, key limit); the stream goes on */
            continue;
        }
        /* A socket closed under a lane not yet checked has fileno -1: its descriptor may
           belong to another socket by now. */
        PyObject *fd = PyObject_CallMethodNoArgs(lane->sock, fileno_name);
        if (fd == NULL)
            goto fail;
        long number = PyLong_AsLong(fd);
        Py_DECREF(fd);
        if (number != lane->fd) {
            PyErr_Clear();
            lane->errors++;
            continue;
        }
        if (!use_ring) {
            if (sendto(lane->fd, buffer, protected_length, MSG_DONTWAIT,
                       (struct sockaddr *)&lane->address, lane->address_length) < 0)
                lane->errors++; /* lost like any UDP packet */
            continue;
        }
#ifdef __linux__
        if (queued == ring.entries) {
            Py_ssize_t refused = submit(&ring, tail, queued, lanes);
            if (refused < 0)
                goto fail;
            sent += queued - refused;
            failed += refused;
            queued = 0;
        }
        struct sqe *entry = &ring.sqes[tail & ring.sq_mask];
        memset(entry, 0, sizeof(*entry));
        entry->opcode = OP_SENDMSG;
        entry->fd = lane->fd;
        entry->addr = (uint64_t)(uintptr_t)&lane->msg;
        entry->len = 1;
        entry->msg_flags = MSG_DONTWAIT;
        entry->user_data = (uint64_t)index;
        lane->iov.iov_len = (size_t)protected_length;
        tail++;
        queued++;
#endif
    }
#ifdef __linux__
    if (queued) {
        Py_ssize_t refused = submit(&ring, tail, queued, lanes);
        if (refused < 0)
            goto fail;
        sent += queued - refused;
        failed += refused;
    }
#endif
    Py_DECREF(lanes);
    PyBuffer_Release(&payload);
    return Py_BuildValue("nnn", sent, failed, idle);
fail:
    Py_DECREF(lanes);
    PyBuffer_Release(&payload);
    return NULL;
}

PyDoc_STRVAR(bind_doc,
"bind(address)\n\n"
"Use the srtp_protect at `address` (libsrtp 2's srtp_protect(srtp_t, void *, int *), from\n"
"pylibsrtp's binding).");

static PyObject *
lane_bind(PyObject *module, PyObject *address)
{
    unsigned long long value = PyLong_AsUnsignedLongLong(address);
    if (PyErr_Occurred())
        return NULL;
    if (!value) {
        PyErr_SetString(PyExc_ValueError, "bind: a null address");
        return NULL;
    }
    srtp_protect = (srtp_protect_fn)(uintptr_t)value;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"send", (PyCFunction)(void (*)(void))lane_send, METH_FASTCALL, send_doc},
    {"bind", lane_bind, METH_O, bind_doc},
    {NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "audio._lane",
    .m_doc = "The fast lane's per-packet loop in C (see audio.fastlane).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__lane(void)
{
    if (PyType_Ready(&LaneType) < 0)
        return NULL;
    fileno_name = PyUnicode_InternFromString("fileno");
    if (fileno_name == NULL)
        return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    if (PyModule_AddObjectRef(module, "Lane", (PyObject *)&LaneType) < 0 ||
        PyModule_AddIntConstant(module, "LARGEST", BUFFER_SIZE - SRTP_TRAILER) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
