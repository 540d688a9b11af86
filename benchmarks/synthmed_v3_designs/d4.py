# Design d4 of the SynthMed-5 v3 search: d3 with larger dermoscopy structures (r 0.24-0.3 instead of 0.2-0.25) in a
# slightly larger lesion (R0 0.72-0.85 instead of 0.68-0.8); the weakest ceiling of d3 was dermoscopy (64.6).
exec(open('benchmarks/synthmed_v3_designs/d3.py').read())

def _render_derm_v3(U, y, x0, y0, noise, px):
    u, v = _pose(x0, y0, U(-3.14, 3.14), U(.9, 1.1), U(-.08, .08), U(-.08, .08))
    skin = _rgb(U(.75, .95), U(.52, .7), U(.42, .6))
    tex = sum(np.cos(U(3, 8) * (np.cos(t) * u + np.sin(t) * v) + U(0, 6.3)) for t in [U(0, 3.14) for _ in range(2)])
    img = skin * (1 + .04 * tex)[..., None]
    cx, cy, R0 = U(-.08, .08), U(-.08, .08), U(.72, .85)
    rho, th = np.sqrt((u - cx) ** 2 + (v - cy) ** 2), np.arctan2(v - cy, u - cx)
    kk = np.arange(2, 6, dtype=np.float32)[None, :, None, None]
    R = R0 * (1 + (U(0, .05, 4) * np.cos(kk * th[:, None] + U(0, 6.3, 4))).sum(1))
    lesion = _rgb(U(.5, .68), U(.3, .42), U(.2, .28)) * (.8 + .2 * np.clip(rho / R, 0, 1))[..., None]
    img = _mix(img, lesion, _step(R - rho, U(.03, .06) + px))
    dark = np.where(U() < .5, 1., 0.)[..., None]
    col = dark * _rgb(U(.08, .14), U(.05, .09), U(.04, .07)) + (1 - dark) * _rgb(U(.14, .2), U(.17, .23), U(.3, .38))
    a = _findings(U, y, u - cx, v - cy, px, (1, 3), (.24, .3), _in_disc(.4), 3, (.85, 1.))
    img = _mix(img, col, .95 * a)
    on = _count(U, np.zeros(len(y), np.int64), [(0, 3)], 3)
    ha, hc = U(0, 3.14, 3), U(-.9, .9, 3)
    hd = np.abs(np.cos(ha) * u[:, None] + np.sin(ha) * v[:, None] - hc + .05 * np.sin(U(3, 8, 3) * u[:, None]))
    img = _mix(img, _rgb(U(.1, .2), U(.07, .12), U(.05, .1)), (on * _step(np.maximum(.008, .4 * px) - hd, .5 * px)).max(1))
    return img * _step(U(1.1, 1.5) - np.sqrt(x0 ** 2 + y0 ** 2), .05)[..., None]

RENDERERS_V3.update(derm=_render_derm_v3)
