/* float64 sine and cosine for the control environments (flowrl/env_ctl.h): the pendulum's
 * dynamics and observations, the nav2d goal circle. From + - * / and floor only, so every
 * machine computes the same bits (docs/design.md §1.3: glibc's sin differs between versions). */
#include <math.h>

#include "flowrl/env_ctl.h"

/* π/2 = P1 + P2 + P3: P1 and P2 keep 33 significant bits each, so k·P1 and k·P2 are exact for
 * |k| < 2^20; P3 is the rest rounded (computed from 100 digits of π). */
#define PIO2_1 1.5707963267341256
#define PIO2_2 6.077100506303966e-11
#define PIO2_3 2.0222662487959506e-21
#define TWO_OVER_PI 0.6366197723675814
#define TWO_PI 6.283185307179586
#define TWO_PI_LO 2.4492935982947064e-16 /* 2π − TWO_PI */
#define K_MAX 1647099.0 /* 2^20·π/2, rounded down */

/* sin(rh + rl) for |rh| <= π/4 (+ tiny): rh + rh³·S(rh²), S the Taylor series to rh^21 (the
 * truncation r^23/23! < 2^-82 relative), plus rl·cos rh ≈ rl·(1 − rh²/2). */
static double sin_poly(double rh, double rl)
{
    const double z = rh * rh;
    double p = -1.0 / 51090942171709440000.0; /* −1/21! */
    p = p * z + 1.0 / 121645100408832000.0;   /* 1/19! */
    p = p * z - 1.0 / 355687428096000.0;      /* 1/17! */
    p = p * z + 1.0 / 1307674368000.0;        /* 1/15! */
    p = p * z - 1.0 / 6227020800.0;           /* 1/13! */
    p = p * z + 1.0 / 39916800.0;             /* 1/11! */
    p = p * z - 1.0 / 362880.0;               /* 1/9! */
    p = p * z + 1.0 / 5040.0;                 /* 1/7! */
    p = p * z - 1.0 / 120.0;                  /* 1/5! */
    p = p * z + 1.0 / 6.0;                    /* 1/3! */
    return rh + (rl * (1.0 - 0.5 * z) - (rh * z) * p);
}

/* cos(rh + rl): 1 − z/2 + z²·C(z) to rh^22 with 1 − z/2 split (w = 1 − z/2 rounded, its error
 * added back), minus rl·sin rh ≈ rl·rh. */
static double cos_poly(double rh, double rl)
{
    const double z = rh * rh;
    double p = 1.0 / 1124000727777607680000.0; /* 1/22! */
    p = p * z - 1.0 / 2432902008176640000.0;   /* 1/20! */
    p = p * z + 1.0 / 6402373705728000.0;      /* 1/18! */
    p = p * z - 1.0 / 20922789888000.0;        /* 1/16! */
    p = p * z + 1.0 / 87178291200.0;           /* 1/14! */
    p = p * z - 1.0 / 479001600.0;             /* 1/12! */
    p = p * z + 1.0 / 3628800.0;               /* 1/10! */
    p = p * z - 1.0 / 40320.0;                 /* 1/8! */
    p = p * z + 1.0 / 720.0;                   /* 1/6! */
    p = p * z - 1.0 / 24.0;                    /* 1/4! */
    const double hz = 0.5 * z, w = 1.0 - hz;
    return w + ((((1.0 - w) - hz) - (z * z) * p) - rh * rl);
}

void fr_ctl_sincos(double x, double *s, double *c)
{
    if (!isfinite(x)) {
        *s = *c = NAN;
        return;
    }
    if (fabs(x) >= K_MAX) { /* x = n·TWO_PI + m exactly (fmod); x mod 2π = m − n·TWO_PI_LO */
        const double m = fmod(x, TWO_PI);
        x = m - floor((x - m) / TWO_PI + 0.5) * TWO_PI_LO;
    }
    const double k = floor(x * TWO_OVER_PI + 0.5);
    /* x − k·π/2 in two parts: a is exact (k·P1 has 53 bits, and a needs no more than x's),
     * b = k·P2 exact, a − b by Knuth's two-sum, then − k·P3 into the low part */
    const double a = x - k * PIO2_1, b = -(k * PIO2_2);
    const double hi = a + b, bb = hi - a;
    const double lo = ((a - (hi - bb)) + (b - bb)) - k * PIO2_3;
    const double rh = hi + lo, rl = lo - (rh - hi);
    const double sr = sin_poly(rh, rl), cr = cos_poly(rh, rl);
    switch ((long)k & 3) {
    case 0: *s = sr; *c = cr; break;
    case 1: *s = cr; *c = -sr; break;
    case 2: *s = -sr; *c = -cr; break;
    default: *s = -cr; *c = sr; break;
    }
}
