/*
 * ftprep._speedups: the validator's byte passes over a line, in C.
 *
 * The fast path (ftprep/fastpath.py) needs three facts about every line besides its
 * parse: that it is valid UTF-8 (msgspec's Raw values skip that check), how many ':'
 * bytes it holds (the proof that no object has a duplicate key), and a 64-bit
 * fingerprint for finding duplicate records. In Python these are three passes that
 * cost more than the parse itself; here they are two passes over bytes already in
 * the cache. Of each message's content it needs two more (is it plainly not blank,
 * how many ':' does it hold), answered in one call. ftprep/_native.py holds the
 * pure-Python equivalents, used when this module was not built; tests hold the two
 * to the same answers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define HIGH 0x8080808080808080ULL
#define LOW7 0x7F7F7F7F7F7F7F7FULL
#define COLON8 0x3A3A3A3A3A3A3A3AULL
#define ONES 0x0101010101010101ULL
#define K1 0x9E3779B97F4A7C15ULL
#define K2 0xC2B2AE3D27D4EB4FULL

static inline uint64_t load64(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, 8); /* unaligned; the byte order only changes fingerprints, never kept */
    return w;
}

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

/* 0x01 in each byte of w that is ':'. Exact: the addition cannot carry across bytes. */
static inline uint64_t colon_bytes(uint64_t w)
{
    uint64_t x = w ^ COLON8;
    return (~(((x & LOW7) + LOW7) | x) & HIGH) >> 7;
}

/*
 * One pass: the number of ':' bytes and a fingerprint of p[0:n], a 32-bit hash above
 * the length's low 32 bits (the validator reads that many bytes back).
 *
 * The hash only has to make different lines unlikely to collide: the validator
 * re-reads and compares the lines of every repeated fingerprint before it reports a
 * duplicate. Four multiply-rotate lanes keep the multiplications independent.
 */
static uint64_t colons_and_fingerprint(const unsigned char *p, Py_ssize_t n, Py_ssize_t *colons)
{
    uint64_t a = K1, b = K2, c = K1 ^ K2, d = (uint64_t)n * K2;
    uint64_t counts = 0; /* per-byte colon counts; a byte grows by at most 4 a block */
    Py_ssize_t total = 0, i = 0;
    int blocks = 0;
    for (; i + 32 <= n; i += 32) {
        uint64_t w0 = load64(p + i), w1 = load64(p + i + 8);
        uint64_t w2 = load64(p + i + 16), w3 = load64(p + i + 24);
        counts += colon_bytes(w0) + colon_bytes(w1) + colon_bytes(w2) + colon_bytes(w3);
        if (++blocks == 63) {
            total += (Py_ssize_t)((counts * ONES) >> 56);
            counts = 0;
            blocks = 0;
        }
        a = rotl((a ^ w0) * K1, 29);
        b = rotl((b ^ w1) * K1, 29);
        c = rotl((c ^ w2) * K1, 29);
        d = rotl((d ^ w3) * K1, 29);
    }
    total += (Py_ssize_t)((counts * ONES) >> 56);
    for (; i + 8 <= n; i += 8) {
        uint64_t w = load64(p + i);
        total += (Py_ssize_t)((colon_bytes(w) * ONES) >> 56);
        a = rotl((a ^ w) * K2, 31);
    }
    if (i < n) {
        uint64_t w = 0;
        memcpy(&w, p + i, (size_t)(n - i));
        total += (Py_ssize_t)((colon_bytes(w) * ONES) >> 56); /* zero padding is no ':' */
        b = rotl((b ^ w) * K2, 31);
    }
    *colons = total;
    uint64_t h = a ^ rotl(b, 17) ^ rotl(c, 34) ^ rotl(d, 51) ^ (uint64_t)n;
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDULL;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ULL;
    h ^= h >> 33;
    return (h & 0xFFFFFFFF00000000ULL) | ((uint64_t)n & 0xFFFFFFFFULL);
}

/* The ':' bytes of p[0:n], 8 at a time. */
static Py_ssize_t count_colons(const unsigned char *p, Py_ssize_t n)
{
    Py_ssize_t total = 0, i = 0;
    while (i + 8 <= n) {
        uint64_t counts = 0; /* per byte; at most 255 words before they are summed */
        Py_ssize_t stop = i + 8 * 255 < n ? i + 8 * 255 : n;
        for (; i + 8 <= stop; i += 8)
            counts += colon_bytes(load64(p + i));
        total += (Py_ssize_t)((counts * ONES) >> 56);
    }
    for (; i < n; i++)
        total += p[i] == ':';
    return total;
}

/*
 * UTF-8 as Python's strict decoder takes it: no overlong forms, no surrogates
 * (ED A0..BF), nothing above U+10FFFF. For each lead byte: the sequence's length
 * (0: the byte cannot start one) and the range its second byte must fall in.
 */
static unsigned char SEQ_LEN[256], SECOND_LO[256], SECOND_HI[256];

static void init_tables(void)
{
    for (int c = 0; c < 256; c++) {
        SEQ_LEN[c] = 0;
        SECOND_LO[c] = 1; /* an empty range: nothing passes */
        SECOND_HI[c] = 0;
        if (c >= 0xC2 && c <= 0xDF) {
            SEQ_LEN[c] = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            SEQ_LEN[c] = 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            SEQ_LEN[c] = 4;
        }
        if (SEQ_LEN[c]) {
            SECOND_LO[c] = 0x80;
            SECOND_HI[c] = 0xBF;
        }
    }
    SECOND_LO[0xE0] = 0xA0; /* overlong below U+0800 */
    SECOND_HI[0xED] = 0x9F; /* surrogates U+D800..DFFF */
    SECOND_LO[0xF0] = 0x90; /* overlong below U+10000 */
    SECOND_HI[0xF4] = 0x8F; /* above U+10FFFF */
}

static inline int continuation(unsigned char b) { return (b & 0xC0) == 0x80; }

/* 1 when p[0:n] is valid UTF-8. */
static int valid_utf8(const unsigned char *p, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    for (;;) {
        /* Skip ASCII: the common case, 16 then 8 bytes at a time. */
        while (i + 16 <= n && !((load64(p + i) | load64(p + i + 8)) & HIGH))
            i += 16;
        if (i + 8 <= n) {
            uint64_t high = load64(p + i) & HIGH;
            if (!high) {
                i += 8;
                continue;
            }
            /* memcpy loads little-endian bytes into the low bits only on such machines */
#if PY_LITTLE_ENDIAN
            i += __builtin_ctzll(high) >> 3;
#else
            while (p[i] < 0x80)
                i++;
#endif
        } else {
            while (i < n && p[i] < 0x80)
                i++;
            if (i >= n)
                return 1;
        }
        unsigned char lead = p[i];
        int len = SEQ_LEN[lead];
        if (i + 4 <= n) {
            /* Without branches on the length, which varies from character to character. */
            unsigned char b1 = p[i + 1], b2 = p[i + 2], b3 = p[i + 3];
            int ok = (b1 >= SECOND_LO[lead]) & (b1 <= SECOND_HI[lead]);
            ok &= continuation(b2) | (len < 3);
            ok &= continuation(b3) | (len < 4);
            if (!ok)
                return 0;
        } else {
            if (len == 0 || i + len > n)
                return 0;
            if (p[i + 1] < SECOND_LO[lead] || p[i + 1] > SECOND_HI[lead])
                return 0;
            for (int k = 2; k < len; k++)
                if (!continuation(p[i + k]))
                    return 0;
        }
        i += len;
    }
}

/* A bytes object without a copy, or any other buffer through the buffer protocol. */
typedef struct {
    const unsigned char *p;
    Py_ssize_t n;
    Py_buffer view;
    int has_view;
} bytes_arg;

static int get_bytes(PyObject *obj, bytes_arg *out)
{
    if (PyBytes_CheckExact(obj)) {
        out->p = (const unsigned char *)PyBytes_AS_STRING(obj);
        out->n = PyBytes_GET_SIZE(obj);
        out->has_view = 0;
        return 0;
    }
    if (PyObject_GetBuffer(obj, &out->view, PyBUF_SIMPLE) < 0)
        return -1;
    out->p = (const unsigned char *)out->view.buf;
    out->n = out->view.len;
    out->has_view = 1;
    return 0;
}

static void release(bytes_arg *arg)
{
    if (arg->has_view)
        PyBuffer_Release(&arg->view);
}

static PyObject *scan(PyObject *self, PyObject *obj)
{
    bytes_arg arg;
    if (get_bytes(obj, &arg) < 0)
        return NULL;
    PyObject *result;
    if (!valid_utf8(arg.p, arg.n)) {
        result = Py_NewRef(Py_None);
    } else {
        Py_ssize_t n = arg.n, colons;
        if (n && arg.p[n - 1] == '\r')
            n--; /* a CRLF line is the same record as its LF twin; '\r' is no ':' */
        uint64_t fp = colons_and_fingerprint(arg.p, n, &colons);
        result = Py_BuildValue("nK", colons, (unsigned long long)fp);
    }
    release(&arg);
    return result;
}

static PyObject *fingerprint(PyObject *self, PyObject *obj)
{
    bytes_arg arg;
    if (get_bytes(obj, &arg) < 0)
        return NULL;
    Py_ssize_t colons;
    uint64_t fp = colons_and_fingerprint(arg.p, arg.n, &colons);
    release(&arg);
    return PyLong_FromUnsignedLongLong((unsigned long long)fp);
}

static PyObject *colons(PyObject *self, PyObject *obj)
{
    bytes_arg arg;
    if (get_bytes(obj, &arg) < 0)
        return NULL;
    Py_ssize_t count = count_colons(arg.p, arg.n);
    release(&arg);
    return PyLong_FromSsize_t(count);
}

/*
 * What the fast path asks of a JSON string value (a message's content), in one call:
 * its kind in the low two bits and its ':' bytes above them. Kinds: 0, a string whose
 * first character proves it is not blank (a printable ASCII character other than '"'
 * and '\', since an escape may be whitespace, or a UTF-8 lead byte that no
 * whitespace character starts with: Unicode's spaces begin with C2, E1, E2, E3);
 * 1, a string to decode and test; 2, not a string.
 */
static PyObject *string_facts(PyObject *self, PyObject *obj)
{
    bytes_arg arg;
    if (get_bytes(obj, &arg) < 0)
        return NULL;
    long kind;
    if (arg.n < 2 || arg.p[0] != '"') {
        kind = 2;
    } else {
        unsigned char c = arg.p[1];
        int plain = (c >= 0x21 && c < 0x7F && c != '"' && c != '\\') ||
                    (c >= 0xC3 && c <= 0xE0) || c >= 0xE4;
        kind = plain ? 0 : 1;
    }
    Py_ssize_t colons = count_colons(arg.p, arg.n);
    release(&arg);
    return PyLong_FromSsize_t(colons * 4 + kind);
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_O,
     "scan(line) -> (colons, fingerprint) of a line without its final CR, or None "
     "when it is not valid UTF-8."},
    {"fingerprint", fingerprint, METH_O, "fingerprint(data) -> 64-bit fingerprint."},
    {"colons", colons, METH_O, "colons(data) -> number of ':' bytes."},
    {"string_facts", string_facts, METH_O,
     "string_facts(value) -> colons * 4 + kind; kind 0: a JSON string that is not "
     "blank, 1: a string to decode and test, 2: not a string."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "ftprep._speedups", NULL, -1, methods,
};

PyMODINIT_FUNC PyInit__speedups(void)
{
    init_tables();
    return PyModule_Create(&module);
}
