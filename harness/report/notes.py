"""Footnotes of a table: where each number comes from and what it does not say alone."""
from __future__ import annotations

import pandas as pd


def provenance_notes(df: pd.DataFrame, metrics: list[str]) -> list[str]:
    notes = []
    estimates: list[str] = []
    for m in metrics:
        ok = df[(df["metric"] == m) & (df["status"] == "ok")]
        if ok.empty:
            continue
        prov = ok.iloc[0].get("provenance") or {}
        settings = prov.get("settings") or {}
        if prov.get("estimated") and prov.get("measured_on"):   # one note for all estimated columns
            device = str(settings.get("device") or m.partition("@")[2] or m)
            host = device.startswith("host") and ": " in str(prov["measured_on"])
            estimates.append(device + (f" ({str(prov['measured_on']).split(': ', 1)[1]})" if host else ""))
            if len(estimates) == 1:
                notes.append("")    # its place among the notes, filled in below
                at = len(notes) - 1
                batch = settings.get("batch_size", 1)
        elif prov.get("measured_on"):
            kind = "estimated for" if prov.get("estimated") else "measured on"
            extra = ", ".join(f"{k} {settings[k]}" for k in ("threads", "batch_size", "device") if k in settings)
            notes.append(f"{m}: {kind} {prov['measured_on']}" + (f" ({extra})" if extra else "")
                         + (f", per-layer roofline over {ok.iloc[0]['n']} layers" if prov.get("estimated")
                            else ", median of %s calls" % ok.iloc[0]["n"] if m.startswith("latency") else ""))
        elif prov.get("backend"):
            notes.append(f"{m}: {prov['backend']}")
        notes += _quality_caveats(m, ok)
    if estimates:
        notes[at] = (f"est.: per-layer roofline estimates (not measurements) at batch {batch}, for {', '.join(estimates)}; each device's numbers and their sources: "
                     "avatarbench list devices")
    random = df[[str((p or {}).get("weights", "")).startswith("random init") if isinstance(p, dict) else False
                 for p in df["provenance"]]]
    if not random.empty:
        # a record scored on generated samples says how they were made
        scored = random["provenance"].map(lambda p: isinstance(p, dict) and "generation" in p)
        quality = random[scored & (random["status"] == "ok")]
        if quality.empty:
            notes.append("weights: random initialisation (efficiency metrics do not depend on weight values)")
        else:
            names = ", ".join(sorted(set(quality["variant"]) - {"ground-truth"}))
            notes.append(f"weights: random initialisation for {names}: their quality scores "
                         "describe untrained generators, not the published models")
    trained: dict[str, str] = {}
    for v, p in zip(df["variant"], df["provenance"]):
        t = p.get("training") if isinstance(p, dict) else None
        if isinstance(t, dict) and v not in trained:
            data = t.get("data") or {}
            trained[v] = (f"{v} ({t.get('recipe')}, {t.get('steps')} steps"
                          + (", synthetic data" if data.get("synthetic") else "") + ")")
    if trained:
        notes.append("trained by the harness: " + ", ".join(trained[v] for v in sorted(trained))
                     + "; curves and provenance in the run folder's training/")
    unverified = sorted({w.get("file", "?") for p in df["provenance"] if isinstance(p, dict)
                         for w in _weights_of(p) if w.get("check") == "unverified"})
    if unverified:
        notes.append("weights not verified against their canonical hash: " + ", ".join(unverified))
    data = {str(p["generation"].get("data")) for p in df["provenance"]
            if isinstance(p, dict) and isinstance(p.get("generation"), dict)}
    if data:
        notes.append("data: " + "; ".join(sorted(data)))
    return notes


def _quality_caveats(metric: str, ok: pd.DataFrame) -> list[str]:
    """What a quality number in the table does not say by itself: a small-sample warning,
    clips left out because the generator left no detectable face."""
    out = []
    stats = [(r["variant"], r.get("stats") if isinstance(r.get("stats"), dict) else {})
             for _, r in ok.iterrows()]
    warnings = sorted({st["warning"] for _, st in stats if st.get("warning")})
    out += [f"{metric}: {w}" for w in warnings[:2]]
    for variant, st in stats:
        short = st.get("clips_too_short") or []
        if short:
            out.append(f"{metric}: {variant}: {len(short)} clip(s) shorter than one sync window left out")
        faceless = st.get("clips_without_face") or {}
        if faceless:
            out.append(f"{metric}: {variant}: {len(faceless)} clip(s) with no detectable face in the "
                       f"generated frames left out ({', '.join(list(faceless)[:3])})")
    return out


def _weights_of(prov: dict) -> list[dict]:
    w = (prov.get("settings") or {}).get("weights")
    return [x for x in (w if isinstance(w, list) else [w]) if isinstance(x, dict)]
