/* The optimiser steps' loops (src/_optim.pyx): one pass over a parameter and its state.
 *
 * Every operation must round on its own, in the order written, to give the bits of the NumPy
 * array expressions these loops replace: no multiply-add may be fused. Only _optim includes
 * this header, and setup.py compiles _optim with -ffp-contract=off (NO_CONTRACT). Kept apart
 * from _simd.h, whose loops the other modules compile with contraction allowed. */
#ifndef PYCONV1D_OPTIM_H
#define PYCONV1D_OPTIM_H

#include "_simd.h"

/* One Adam / AdamW step over n elements, each operation rounded on its own in the order of
 * src/_optim.pyx's formula (the bits of NumPy's array expressions). l2 / dec: the L2 or
 * the decoupled weight decay applies. vmax: the amsgrad maximum (NULL: none). np.maximum's NaN
 * rule: a NaN on either side wins. */
#define PYC_ADAM(T, SUF, SQRT)                                                                \
PYC_CLONES static void pyc_adam_##SUF(ptrdiff_t n, T *restrict p, const T *restrict g,       \
                                      T *restrict m, T *restrict v, T *restrict vmax, int l2, \
                                      T wd, int dec, T decay, T c1, T b2, T c2, T step,       \
                                      T bc2, T eps)                                           \
{                                                                                             \
    for (ptrdiff_t i = 0; i < n; i++) {                                                       \
        T gi = g[i], w = p[i], u;                                                             \
        if (l2) gi = gi + wd * w;                                                             \
        if (dec) w = w * decay;                                                               \
        m[i] = m[i] + c1 * (gi - m[i]);                                                       \
        u = v[i] * b2;                                                                        \
        u = u + (c2 * gi) * gi;                                                               \
        v[i] = u;                                                                             \
        if (vmax) {                                                                           \
            T x = vmax[i];                                                                    \
            u = (x >= u || x != x) ? x : u;                                                   \
            vmax[i] = u;                                                                      \
        }                                                                                     \
        p[i] = w - step * (m[i] / (SQRT(u) / bc2 + eps));                                     \
    }                                                                                         \
}

/* One Adadelta step over n elements, rounded as pyc_adam is (src/_optim.pyx). */
#define PYC_ADADELTA(T, SUF, SQRT)                                                            \
PYC_CLONES static void pyc_adadelta_##SUF(ptrdiff_t n, T *restrict p, const T *restrict g,   \
                                          T *restrict v, T *restrict u, int l2, T wd, T rho,  \
                                          T c, T eps, T lr)                                   \
{                                                                                             \
    for (ptrdiff_t i = 0; i < n; i++) {                                                       \
        T gi = g[i], a, d;                                                                    \
        if (l2) gi = gi + wd * p[i];                                                          \
        a = v[i] * rho;                                                                       \
        a = a + (c * gi) * gi;                                                                \
        v[i] = a;                                                                             \
        d = SQRT(u[i] + eps) / SQRT(a + eps) * gi;                                            \
        a = u[i] * rho;                                                                       \
        u[i] = a + (c * d) * d;                                                               \
        p[i] = p[i] - lr * d;                                                                 \
    }                                                                                         \
}

/* One SGD step with momentum over n elements, rounded as pyc_adam is (src/_optim.pyx);
 * first: the buffer starts as the gradient. */
#define PYC_SGD(T, SUF)                                                                       \
PYC_CLONES static void pyc_sgd_##SUF(ptrdiff_t n, T *restrict p, const T *restrict g,        \
                                     T *restrict buf, int l2, T wd, T mom, T c, T lr,         \
                                     int first, int nesterov)                                 \
{                                                                                             \
    for (ptrdiff_t i = 0; i < n; i++) {                                                       \
        T gi = g[i], b;                                                                       \
        if (l2) gi = gi + wd * p[i];                                                          \
        if (first) b = gi;                                                                    \
        else { b = buf[i] * mom; b = b + c * gi; }                                            \
        buf[i] = b;                                                                           \
        gi = nesterov ? gi + mom * b : b;                                                     \
        p[i] = p[i] - lr * gi;                                                                \
    }                                                                                         \
}

PYC_ADAM(float, f, sqrtf)
PYC_ADAM(double, d, sqrt)
PYC_SGD(float, f)
PYC_SGD(double, d)
PYC_ADADELTA(float, f, sqrtf)
PYC_ADADELTA(double, d, sqrt)

#endif
