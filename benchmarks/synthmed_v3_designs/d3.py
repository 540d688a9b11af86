# Design d3 of the SynthMed-5 v3 search, run inside midol.data by benchmarks/synthmed_v3_gate.py --design.
# Changes from d2 (d2.py on top of nbs/01_data.ipynb at commit 648c15f), for the three modalities d2 left short:
# - `_findings` takes the opacity range per modality;
# - X-ray: centres in two wide bands over the lung fields (|x| 0.12-0.62, y -0.55..0.45), none on the spine;
#   opacity 0.85-1 (d2: 0.6-1, faint findings on the bright mediastinum);
# - OCT: the whole scan moves more in height (top of the retina at -0.85..-0.45 instead of -0.75..-0.5);
# - dermoscopy: darker structures (brown-black or slate blue; d1/d2: blue-grey close to the lesion's brightness),
#   opacity 0.85-1.
exec(open('benchmarks/synthmed_v3_designs/d2.py').read())

def _findings(U, y, u, v, px, n, r, centre, k, opacity=(.6, 1.)):
    on = _count(U, np.zeros(len(y), np.int64), [n], k)
    cx, cy = centre(U, k)
    a = _finding_alpha(y, u[:, None] - cx, v[:, None] - cy, U(0, np.pi, k), U(*r, k), px)
    return (on * U(*opacity, k) * a).max(1)

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
    def centre(U, k): return np.where(U(0, 1, k) < .5, -1., 1.) * U(.12, .62, k), U(-.55, .45, k)
    return _gray(I + U(.3, .42) * _findings(U, y, u, v, px, (1, 3), (.26, .34), centre, 3, (.85, 1.)))

def _render_oct_v3(U, y, x0, y0, noise, px):
    u, v = _pose(x0, y0, U(-.1, .1), U(.88, 1.12), U(-.08, .08), U(-.1, .1))
    v0, a, pit, pw, T = U(-.85, -.45), U(-.1, .15), U(.06, .12), U(.1, .17), U(.95, 1.1)
    top = v0 + a * u ** 2 + pit * np.exp(-u ** 2 / (2 * pw ** 2))
    rpe = v0 + a * u ** 2 + T
    z = (v - top) / (rpe - top)
    inside = _step(v - top, px) * _step(rpe - v, px)
    I = .05 + inside * (.32 + .35 * np.exp(-(z / .12) ** 2) + .1 * np.cos(2 * np.pi * 2.5 * z))
    I = I + U(.45, .6) * np.exp(-((v - rpe) / np.maximum(.03, px)) ** 2)
    I = I + _step(v - rpe, px) * (.3 * np.exp(-np.maximum(v - rpe, 0) / .3))
    def centre(U_, k):
        fc = U_(-.65, .65, k)
        return fc, v0[:, None] + a[:, None] * fc ** 2 + U_(.4, .6, k) * T[:, None]
    I = I * (1 - .85 * _findings(U, y, u, v, px, (1, 3), (.26, .32), centre, 3))
    I = I * np.exp(U(.15, .3) * noise[:, 0] - .05)
    return _gray(I)

def _render_derm_v3(U, y, x0, y0, noise, px):
    u, v = _pose(x0, y0, U(-3.14, 3.14), U(.9, 1.1), U(-.08, .08), U(-.08, .08))
    skin = _rgb(U(.75, .95), U(.52, .7), U(.42, .6))
    tex = sum(np.cos(U(3, 8) * (np.cos(t) * u + np.sin(t) * v) + U(0, 6.3)) for t in [U(0, 3.14) for _ in range(2)])
    img = skin * (1 + .04 * tex)[..., None]
    cx, cy, R0 = U(-.08, .08), U(-.08, .08), U(.68, .8)
    rho, th = np.sqrt((u - cx) ** 2 + (v - cy) ** 2), np.arctan2(v - cy, u - cx)
    kk = np.arange(2, 6, dtype=np.float32)[None, :, None, None]
    R = R0 * (1 + (U(0, .05, 4) * np.cos(kk * th[:, None] + U(0, 6.3, 4))).sum(1))
    lesion = _rgb(U(.5, .68), U(.3, .42), U(.2, .28)) * (.8 + .2 * np.clip(rho / R, 0, 1))[..., None]
    img = _mix(img, lesion, _step(R - rho, U(.03, .06) + px))
    dark = np.where(U() < .5, 1., 0.)[..., None]
    col = dark * _rgb(U(.08, .14), U(.05, .09), U(.04, .07)) + (1 - dark) * _rgb(U(.14, .2), U(.17, .23), U(.3, .38))
    a = _findings(U, y, u - cx, v - cy, px, (1, 3), (.2, .25), _in_disc(.4), 3, (.85, 1.))
    img = _mix(img, col, .95 * a)
    on = _count(U, np.zeros(len(y), np.int64), [(0, 3)], 3)
    ha, hc = U(0, 3.14, 3), U(-.9, .9, 3)
    hd = np.abs(np.cos(ha) * u[:, None] + np.sin(ha) * v[:, None] - hc + .05 * np.sin(U(3, 8, 3) * u[:, None]))
    img = _mix(img, _rgb(U(.1, .2), U(.07, .12), U(.05, .1)), (on * _step(np.maximum(.008, .4 * px) - hd, .5 * px)).max(1))
    return img * _step(U(1.1, 1.5) - np.sqrt(x0 ** 2 + y0 ** 2), .05)[..., None]

RENDERERS_V3.update(xray=_render_xray_v3, oct=_render_oct_v3, derm=_render_derm_v3)
