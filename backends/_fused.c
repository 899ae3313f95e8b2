/* nnx.backends._fused: the optimizers' whole-buffer updates as one loop each, ReLU's
 * forward and backward and the bias gradient's row sum as one pass each (NumPy).
 *
 * NumPy's Adam over a flat buffer is 13 array passes (one ufunc call each); here it is one
 * pass that keeps every intermediate in a register. The loops run the NumPy path's
 * operations in the same order and precision, one IEEE rounding each, and are compiled
 * without floating-point contraction (no fused multiply-add) and without fast-math: the
 * numbers are the same bits as the NumPy path's (tests/test_fused.py checks it).
 *
 * Buffers come through the buffer protocol (C-contiguous, "f" or "d", equal lengths, p, m
 * and v writable, no two overlapping), so this file needs no NumPy headers. The loops
 * release the GIL. If this extension cannot be built, nnx runs the NumPy path.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
/* Each loop is compiled twice: for the baseline x86-64 (SSE2) and for AVX2; the AVX2 one
 * runs where the CPU has it (checked once, at import). */
#define NNX_X86 1
#define NNX_AVX2 __attribute__((target("avx2")))
#else
#define NNX_X86 0
#define NNX_AVX2
#endif

/* Adam, as NumPy's flat path runs it: g ← g + λp (if λ); m ← β₁m + (1 − β₁)g;
 * v ← β₂v + (1 − β₂)g²; p ← p − step · m / (√v / √(1 − β₂ᵗ) + ε). */
#define ADAM_KERNEL(NAME, T, SQRT, ATTR)                                                \
ATTR static void                                                                        \
NAME(T *restrict p, const T *restrict g, T *restrict m, T *restrict v, Py_ssize_t n,     \
     T step, T b1, T c1, T b2, T c2, T sqrt_bc2, T eps, T wd, int has_wd)                \
{                                                                                       \
    for (Py_ssize_t i = 0; i < n; i++) {                                                \
        T gi = g[i];                                                                    \
        if (has_wd) gi = gi + p[i] * wd;                                                \
        T mi = m[i] * b1 + gi * c1;                                                     \
        T vi = v[i] * b2 + (gi * gi) * c2;                                              \
        m[i] = mi;                                                                      \
        v[i] = vi;                                                                      \
        T denom = SQRT(vi) / sqrt_bc2 + eps;                                            \
        p[i] = p[i] - (mi / denom) * step;                                              \
    }                                                                                   \
}

/* SGD (PyTorch's form): g ← g + λp (if λ); buf ← μ buf + g (buf₁ = g on the first step);
 * the direction is g + μ buf (Nesterov) or buf; p ← p − η direction. mode bit 0: weight
 * decay, bit 1: momentum, bit 2: first step, bit 3: Nesterov. */
#define SGD_KERNEL(NAME, T, ATTR)                                                       \
ATTR static void                                                                        \
NAME(T *restrict p, const T *restrict g, T *restrict buf, Py_ssize_t n, T lr, T mu,      \
     T wd, int mode)                                                                    \
{                                                                                       \
    for (Py_ssize_t i = 0; i < n; i++) {                                                \
        T gi = g[i];                                                                    \
        if (mode & 1) gi = gi + p[i] * wd;                                              \
        if (mode & 2) {                                                                 \
            T bi = (mode & 4) ? gi : buf[i] * mu + gi;                                  \
            buf[i] = bi;                                                                \
            gi = (mode & 8) ? gi + bi * mu : bi;                                        \
        }                                                                               \
        p[i] = p[i] - gi * lr;                                                          \
    }                                                                                   \
}

/* ReLU as NumPy's maximum(z, 0): NaN stays NaN (its sign too), −0 becomes +0. It takes
 * relu_backward's arguments (an elementwise map of up to two inputs) and no second one. */
#define RELU_KERNEL(NAME, T, ATTR)                                                      \
ATTR static void                                                                        \
NAME(const T *z, const T *unused, T *out, Py_ssize_t n)                                 \
{                                                                                       \
    (void)unused;                                                                       \
    for (Py_ssize_t i = 0; i < n; i++) {                                                \
        T zi = z[i];                                                                    \
        out[i] = ((zi > 0) | (zi != zi)) ? zi : (T)0;   /* no branch: a vector select */ \
    }                                                                                   \
}

/* dL/dz = dL/da · [a > 0], the product taken as NumPy takes dy · (a > 0): by 1 or by 0
 * (so −0 for a negative dy, NaN for an infinite or NaN one). */
#define RELU_BACKWARD_KERNEL(NAME, T, ATTR)                                             \
ATTR static void                                                                        \
NAME(const T *dy, const T *a, T *out, Py_ssize_t n)                                     \
{                                                                                       \
    for (Py_ssize_t i = 0; i < n; i++)                                                  \
        out[i] = dy[i] * (T)(a[i] > 0);                                                 \
}

/* out[j] = Σ_i x[i][j] over the n rows of a C-contiguous (n, k) x, summed in row order:
 * the order of NumPy's add.reduce(x, axis=0) (+0, then each row added in turn). */
#define SUM_ROWS_KERNEL(NAME, T, ATTR)                                                  \
ATTR static void                                                                        \
NAME(const T *restrict x, T *restrict out, Py_ssize_t n, Py_ssize_t k)                  \
{                                                                                       \
    if (n == 0) {                                                                       \
        for (Py_ssize_t j = 0; j < k; j++)                                              \
            out[j] = (T)0;                                                              \
        return;                                                                         \
    }                                                                                   \
    for (Py_ssize_t j = 0; j < k; j++)                                                  \
        out[j] = (T)0 + x[j];                 /* NumPy starts from +0: −0 becomes +0 */  \
    for (Py_ssize_t i = 1; i < n; i++) {                                                \
        const T *row = x + i * k;                                                       \
        for (Py_ssize_t j = 0; j < k; j++)                                              \
            out[j] = out[j] + row[j];                                                   \
    }                                                                                   \
}

ADAM_KERNEL(adam_f32, float, sqrtf, )
ADAM_KERNEL(adam_f64, double, sqrt, )
SGD_KERNEL(sgd_f32, float, )
SGD_KERNEL(sgd_f64, double, )
RELU_KERNEL(relu_f32, float, )
RELU_KERNEL(relu_f64, double, )
RELU_BACKWARD_KERNEL(relu_backward_f32, float, )
RELU_BACKWARD_KERNEL(relu_backward_f64, double, )
SUM_ROWS_KERNEL(sum_rows_f32, float, )
SUM_ROWS_KERNEL(sum_rows_f64, double, )
#if NNX_X86
ADAM_KERNEL(adam_f32_avx2, float, sqrtf, NNX_AVX2)
ADAM_KERNEL(adam_f64_avx2, double, sqrt, NNX_AVX2)
SGD_KERNEL(sgd_f32_avx2, float, NNX_AVX2)
SGD_KERNEL(sgd_f64_avx2, double, NNX_AVX2)
RELU_KERNEL(relu_f32_avx2, float, NNX_AVX2)
RELU_KERNEL(relu_f64_avx2, double, NNX_AVX2)
RELU_BACKWARD_KERNEL(relu_backward_f32_avx2, float, NNX_AVX2)
RELU_BACKWARD_KERNEL(relu_backward_f64_avx2, double, NNX_AVX2)
SUM_ROWS_KERNEL(sum_rows_f32_avx2, float, NNX_AVX2)
SUM_ROWS_KERNEL(sum_rows_f64_avx2, double, NNX_AVX2)
#endif

typedef void (*adam32_fn)(float *, const float *, float *, float *, Py_ssize_t, float,
                          float, float, float, float, float, float, float, int);
typedef void (*adam64_fn)(double *, const double *, double *, double *, Py_ssize_t, double,
                          double, double, double, double, double, double, double, int);
typedef void (*sgd32_fn)(float *, const float *, float *, Py_ssize_t, float, float, float,
                         int);
typedef void (*sgd64_fn)(double *, const double *, double *, Py_ssize_t, double, double,
                         double, int);
typedef void (*map32_fn)(const float *, const float *, float *, Py_ssize_t);
typedef void (*map64_fn)(const double *, const double *, double *, Py_ssize_t);
typedef void (*sum_rows32_fn)(const float *, float *, Py_ssize_t, Py_ssize_t);
typedef void (*sum_rows64_fn)(const double *, double *, Py_ssize_t, Py_ssize_t);
static sum_rows32_fn run_sum_rows_f32 = sum_rows_f32;
static sum_rows64_fn run_sum_rows_f64 = sum_rows_f64;
static map32_fn run_relu_f32 = relu_f32;
static map64_fn run_relu_f64 = relu_f64;
static map32_fn run_relu_backward_f32 = relu_backward_f32;
static map64_fn run_relu_backward_f64 = relu_backward_f64;
static adam32_fn run_adam_f32 = adam_f32;
static adam64_fn run_adam_f64 = adam_f64;
static sgd32_fn run_sgd_f32 = sgd_f32;
static sgd64_fn run_sgd_f64 = sgd_f64;
static const char *instruction_set = "baseline";

/* -- argument checks ------------------------------------------------------------------ */

static void
release(Py_buffer *views, int count)
{
    for (int i = 0; i < count; i++)
        PyBuffer_Release(&views[i]);
}

/* Fill views[0..count) from objs: C-contiguous, format "f" or "d", all the same format and
 * length; those with writable[i] writable; no two overlapping (for an elementwise map, two
 * may be the very same memory). Returns the item size (4 or 8), or 0 with an exception
 * set and nothing held. */
static int
get_buffers(PyObject **objs, const int *writable, const char **names, int count,
            Py_buffer *views, int elementwise)
{
    int got = 0;
    for (; got < count; got++) {
        int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable[got] ? PyBUF_WRITABLE : 0);
        if (PyObject_GetBuffer(objs[got], &views[got], flags) < 0)
            goto fail;
        const char *fmt = views[got].format;
        if (fmt && (fmt[0] == '=' || fmt[0] == '@' || fmt[0] == (PY_LITTLE_ENDIAN ? '<' : '>')))
            fmt++;                                   /* native byte order only */
        if (!fmt || (strcmp(fmt, "f") != 0 && strcmp(fmt, "d") != 0)
                || views[got].itemsize != (fmt[0] == 'f' ? 4 : 8)) {
            PyErr_Format(PyExc_TypeError, "%s: expected a float32 or float64 buffer, got "
                         "format %s", names[got], views[got].format ? views[got].format : "B");
            got++;
            goto fail;
        }
        if (got && (views[got].itemsize != views[0].itemsize
                    || views[got].len != views[0].len)) {
            PyErr_Format(PyExc_ValueError, "%s: expected %zd bytes of the dtype of %s, got "
                         "%zd bytes of item size %zd", names[got], views[0].len, names[0],
                         views[got].len, views[got].itemsize);
            got++;
            goto fail;
        }
    }
    for (int i = 0; i < count; i++) {
        for (int j = i + 1; j < count; j++) {
            const char *a = views[i].buf, *b = views[j].buf;
            if (elementwise && a == b)
                continue;                    /* element i reads and writes element i only */
            if (views[i].len && a < b + views[j].len && b < a + views[i].len) {
                PyErr_Format(PyExc_ValueError, "%s and %s overlap in memory", names[i],
                             names[j]);
                goto fail;
            }
        }
    }
    return (int)views[0].itemsize;
fail:
    release(views, got);
    return 0;
}

/* -- the module's functions -------------------------------------------------------------- */

PyDoc_STRVAR(adam_doc,
"adam(p, g, m, v, step, b1, c1, b2, c2, sqrt_bc2, eps, weight_decay)\n--\n\n"
"One Adam step in place over flat float32 or float64 buffers of one dtype and length:\n"
"g' = g + weight_decay*p (if weight_decay), m = b1*m + c1*g', v = b2*v + c2*g'^2,\n"
"p = p - (m / (sqrt(v)/sqrt_bc2 + eps))*step; each scalar is rounded to the buffers'\n"
"dtype first. g is read only.");

static PyObject *
fused_adam(PyObject *self, PyObject *args)
{
    PyObject *objs[4];
    double step, b1, c1, b2, c2, sqrt_bc2, eps, wd;
    if (!PyArg_ParseTuple(args, "OOOOdddddddd:adam", &objs[0], &objs[1], &objs[2], &objs[3],
                          &step, &b1, &c1, &b2, &c2, &sqrt_bc2, &eps, &wd))
        return NULL;
    static const int writable[4] = {1, 0, 1, 1};
    static const char *names[4] = {"p", "g", "m", "v"};
    Py_buffer views[4];
    int size = get_buffers(objs, writable, names, 4, views, 0);
    if (!size)
        return NULL;
    Py_ssize_t n = views[0].len / size;
    Py_BEGIN_ALLOW_THREADS
    if (size == 4)
        run_adam_f32(views[0].buf, views[1].buf, views[2].buf, views[3].buf, n, (float)step,
                 (float)b1, (float)c1, (float)b2, (float)c2, (float)sqrt_bc2, (float)eps,
                 (float)wd, wd != 0.0);
    else
        run_adam_f64(views[0].buf, views[1].buf, views[2].buf, views[3].buf, n, step, b1, c1,
                 b2, c2, sqrt_bc2, eps, wd, wd != 0.0);
    Py_END_ALLOW_THREADS
    release(views, 4);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(sgd_doc,
"sgd(p, g, buf, lr, momentum, weight_decay, first, nesterov)\n--\n\n"
"One SGD step in place (PyTorch's form): g' = g + weight_decay*p (if weight_decay); with\n"
"momentum buf = g' on the first step, else momentum*buf + g', and the direction is\n"
"g' + momentum*buf (nesterov) or buf; p = p - direction*lr. buf may be None without\n"
"momentum.");

static PyObject *
fused_sgd(PyObject *self, PyObject *args)
{
    PyObject *objs[3];
    double lr, mu, wd;
    int first, nesterov;
    if (!PyArg_ParseTuple(args, "OOOdddpp:sgd", &objs[0], &objs[1], &objs[2], &lr, &mu, &wd,
                          &first, &nesterov))
        return NULL;
    static const int writable[3] = {1, 0, 1};
    static const char *names[3] = {"p", "g", "buf"};
    int count = objs[2] == Py_None ? 2 : 3;
    if (mu != 0.0 && count == 2) {
        PyErr_SetString(PyExc_ValueError, "buf: momentum needs a buffer, got None");
        return NULL;
    }
    Py_buffer views[3];
    int size = get_buffers(objs, writable, names, count, views, 0);
    if (!size)
        return NULL;
    int mode = (wd != 0.0) | ((mu != 0.0) << 1) | ((first != 0) << 2) | ((nesterov != 0) << 3);
    Py_ssize_t n = views[0].len / size;
    void *buf = count == 3 ? views[2].buf : NULL;
    Py_BEGIN_ALLOW_THREADS
    if (size == 4)
        run_sgd_f32(views[0].buf, views[1].buf, buf, n, (float)lr, (float)mu, (float)wd, mode);
    else
        run_sgd_f64(views[0].buf, views[1].buf, buf, n, lr, mu, wd, mode);
    Py_END_ALLOW_THREADS
    release(views, count);
    Py_RETURN_NONE;
}

/* relu and relu_backward: an elementwise map of one or two inputs into out, the last
 * buffer, which may be one of the inputs itself. */
static PyObject *
elementwise(PyObject *args, const char *format, int count, const char **names,
            map32_fn f32, map64_fn f64)
{
    PyObject *objs[3] = {NULL, NULL, NULL};
    if (!PyArg_ParseTuple(args, format, &objs[0], &objs[1], &objs[2]))
        return NULL;
    int writable[3] = {0, 0, 0};
    writable[count - 1] = 1;
    Py_buffer views[3];
    int size = get_buffers(objs, writable, names, count, views, 1);
    if (!size)
        return NULL;
    Py_ssize_t n = views[0].len / size;
    const void *second = count == 3 ? views[1].buf : NULL;
    void *out = views[count - 1].buf;
    Py_BEGIN_ALLOW_THREADS
    if (size == 4)
        f32(views[0].buf, second, out, n);
    else
        f64(views[0].buf, second, out, n);
    Py_END_ALLOW_THREADS
    release(views, count);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(relu_doc,
"relu(z, out)\n--\n\n"
"out = maximum(z, 0) elementwise, as NumPy computes it; out may be z itself.");

static PyObject *
fused_relu(PyObject *self, PyObject *args)
{
    static const char *names[2] = {"z", "out"};
    return elementwise(args, "OO:relu", 2, names, run_relu_f32, run_relu_f64);
}

PyDoc_STRVAR(relu_backward_doc,
"relu_backward(dy, a, out)\n--\n\n"
"out = dy * (a > 0) elementwise, as NumPy computes it; out may be dy or a itself.");

static PyObject *
fused_relu_backward(PyObject *self, PyObject *args)
{
    static const char *names[3] = {"dy", "a", "out"};
    return elementwise(args, "OOO:relu_backward", 3, names, run_relu_backward_f32,
                       run_relu_backward_f64);
}

PyDoc_STRVAR(sum_rows_doc,
"sum_rows(x, out)\n--\n\n"
"out = the sum of the rows of x, a C-contiguous (n, k) buffer, into out (k,), from +0 in\n"
"row order, as NumPy's add.reduce(x, axis=0) sums them; x's size must be a multiple of\n"
"out's.");

static PyObject *
fused_sum_rows(PyObject *self, PyObject *args)
{
    PyObject *objs[2];
    if (!PyArg_ParseTuple(args, "OO:sum_rows", &objs[0], &objs[1]))
        return NULL;
    static const int writable_x[1] = {0}, writable_out[1] = {1};
    static const char *name_x[1] = {"x"}, *name_out[1] = {"out"};
    Py_buffer views[2];
    int size = get_buffers(&objs[0], writable_x, name_x, 1, &views[0], 0);
    if (!size)
        return NULL;
    int size_out = get_buffers(&objs[1], writable_out, name_out, 1, &views[1], 0);
    if (!size_out) {
        release(views, 1);
        return NULL;
    }
    if (size_out != size) {
        PyErr_SetString(PyExc_ValueError, "out: expected the dtype of x");
        release(views, 2);
        return NULL;
    }
    Py_ssize_t k = views[1].len / size, n = k ? views[0].len / views[1].len : 0;
    const char *a = views[0].buf, *b = views[1].buf;
    if ((k == 0 && views[0].len) || (k && views[0].len % views[1].len)) {
        PyErr_Format(PyExc_ValueError, "x: expected a multiple of the %zd items of out, "
                     "got %zd", k, views[0].len / size);
        release(views, 2);
        return NULL;
    }
    if (views[0].len && views[1].len && a < b + views[1].len && b < a + views[0].len) {
        PyErr_SetString(PyExc_ValueError, "x and out overlap in memory");
        release(views, 2);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    if (size == 4)
        run_sum_rows_f32(views[0].buf, views[1].buf, n, k);
    else
        run_sum_rows_f64(views[0].buf, views[1].buf, n, k);
    Py_END_ALLOW_THREADS
    release(views, 2);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"sum_rows", fused_sum_rows, METH_VARARGS, sum_rows_doc},
    {"relu", fused_relu, METH_VARARGS, relu_doc},
    {"relu_backward", fused_relu_backward, METH_VARARGS, relu_backward_doc},
    {"adam", fused_adam, METH_VARARGS, adam_doc},
    {"sgd", fused_sgd, METH_VARARGS, sgd_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "nnx.backends._fused",
    "The optimizers' whole-buffer updates as one compiled loop each (see _fused.c).", -1,
    methods,
};

PyMODINIT_FUNC
PyInit__fused(void)
{
#if NNX_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) {
        run_adam_f32 = adam_f32_avx2;
        run_adam_f64 = adam_f64_avx2;
        run_sgd_f32 = sgd_f32_avx2;
        run_sgd_f64 = sgd_f64_avx2;
        run_sum_rows_f32 = sum_rows_f32_avx2;
        run_sum_rows_f64 = sum_rows_f64_avx2;
        run_relu_f32 = relu_f32_avx2;
        run_relu_f64 = relu_f64_avx2;
        run_relu_backward_f32 = relu_backward_f32_avx2;
        run_relu_backward_f64 = relu_backward_f64_avx2;
        instruction_set = "avx2";
    }
#endif
    PyObject *mod = PyModule_Create(&module);
    if (mod && PyModule_AddStringConstant(mod, "instruction_set", instruction_set) < 0) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
