# Design d2 of the SynthMed-5 v3 search, run inside midol.data by benchmarks/synthmed_v3_gate.py --design.
# Changes from d1 (nbs/01_data.ipynb at commit 648c15f):
# - sharper finding edges (soft-step width 0.15 px instead of 0.35 px) and a random opacity per finding (0.6-1),
#   so that the ring's longer edge gives the colour histogram fewer mid-tones to count;
# - X-ray: centres anywhere in a wide box over both lungs and the mediastinum (d1: two narrow strips);
# - OCT: larger findings (r 0.26-0.32), a thicker retina at a more variable height, weaker speckle.

def _finding_alpha(shape, du, dv, ang, r, px):
    c, s = np.cos(ang), np.sin(ang)
    pu, pv = c * du + s * dv, -s * du + c * dv
    rho, k = np.sqrt(pu ** 2 + pv ** 2), shape[:, None, None, None]
    disc = r - rho
    bar = np.minimum(r / 2 - np.abs(pv), np.pi * r / 2 - np.abs(pu))
    ring = np.minimum(1.25 * r - rho, rho - .75 * r)
    return _step(np.where(k == 0, disc, np.where(k == 1, bar, ring)), .15 * px)

def _findings(U, y, u, v, px, n, r, centre, k):
    on = _count(U, np.zeros(len(y), np.int64), [n], k)
    cx, cy = centre(U, k)
    a = _finding_alpha(y, u[:, None] - cx, v[:, None] - cy, U(0, np.pi, k), U(*r, k), px)
    return (on * U(.6, 1., k) * a).max(1)

def _render_xray_v3(U, y, x0, y0, noise, px):
    u, v = _pose(x0, y0, U(-.12, .12), U(.9, 1.1), U(-.08, .08), U(-.08, .08))
    body = _step(1 - np.sqrt((u / U(.85, 1.)) ** 2 + (v / 1.4) ** 2), .04 + px)
    I = .04 + U(.38, .5) * body
    lungs = []
    for side in (-1, 1):
        cx, cy, ax, ay = side * U(.33, .42), U(-.12, 0.), U(.24, .31), U(.5, .62)
        lungs.append(_step(1 - np.sqrt(((u - cx) / ax) ** 2 + ((v - cy) / ay) ** 2), .08))
    lung = np.maximum(*lungs)
    marks = sum(np.cos(U(8, 16) * (np.cos(a) * u + np.sin(a) * v) + U(0, 6.3)) for a in [U(0, 3.14) for _ in range(3)])
    I = I - U(.25, .32) * lung + .015 * marks * lung
    I = I + U(.18, .28) * _step(1 - np.sqrt(((u - U(.04, .12)) / U(.2, .27)) ** 2 + ((v - U(.15, .25)) / U(.2, .27)) ** 2), .06)
    I = I + .12 * _step(.06 - np.abs(u), px) * body
    rib = .5 + .5 * np.cos(2 * np.pi * ((v + U(.3, .5) * u ** 2) / U(.15, .2) + U(0, 1)))
    I = I + U(.08, .13) * _step(rib - .65, .08) * _step(np.abs(u) - .09, px) * _step(.72 - v, .05) * body
    def centre(U, k): return U(-.6, .6, k), U(-.55, .45, k)
    return _gray(I + U(.3, .42) * _findings(U, y, u, v, px, (1, 3), (.26, .34), centre, 3))

def _render_oct_v3(U, y, x0, y0, noise, px):
    u, v = _pose(x0, y0, U(-.1, .1), U(.88, 1.12), U(-.08, .08), U(-.1, .1))
    v0, a, pit, pw, T = U(-.75, -.5), U(-.1, .15), U(.06, .12), U(.1, .17), U(.95, 1.1)
    top = v0 + a * u ** 2 + pit * np.exp(-u ** 2 / (2 * pw ** 2))
    rpe = v0 + a * u ** 2 + T
    z = (v - top) / (rpe - top)
    inside = _step(v - top, px) * _step(rpe - v, px)
    I = .05 + inside * (.32 + .35 * np.exp(-(z / .12) ** 2) + .1 * np.cos(2 * np.pi * 2.5 * z))
    I = I + U(.45, .6) * np.exp(-((v - rpe) / np.maximum(.03, px)) ** 2)
    I = I + _step(v - rpe, px) * (.3 * np.exp(-np.maximum(v - rpe, 0) / .3))
    def centre(U_, k):
        fc = U_(-.6, .6, k)
        return fc, v0[:, None] + a[:, None] * fc ** 2 + U_(.4, .6, k) * T[:, None]
    I = I * (1 - .85 * _findings(U, y, u, v, px, (1, 3), (.26, .32), centre, 3))
    I = I * np.exp(U(.15, .3) * noise[:, 0] - .05)
    return _gray(I)

RENDERERS_V3.update(xray=_render_xray_v3, oct=_render_oct_v3)
