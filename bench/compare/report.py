#!/usr/bin/env python3
"""Turn the raw results of bench/compare/run.sh into REPORT.md and a ratio chart.

    python3 bench/compare/report.py RESULTS_DIR [--out REPORT.md] [--chart chart.png]

RESULTS_DIR holds the driver's result lines (*.jsonl, one JSON object per line:
target, store, figure, label, value, unit, better) and run.sh's meta.json. For every
(figure, target, store) the report shows the median over the runs; figures appear in
the order in which they first occur (files read in round order). The ratio column is
Portcullis's advantage over oidc-provider, Portcullis on SQLite against oidc-provider:
portcullis / oidc-provider for figures where higher is better, the inverse where lower
is better. Text between <!-- notes --> and <!-- /notes --> of an existing --out file is
kept. The chart needs matplotlib (requirements.txt beside this file); the table does not.

Exit status: 0 on success, 1 when RESULTS_DIR holds no result lines, 2 on bad usage.

Try it on the synthetic data beside this file:

    python3 bench/compare/report.py bench/compare/testdata/postgres-partial \
        --out /tmp/REPORT.md --chart /tmp/chart.png
"""

import argparse
import importlib.util
import json
import math
import os
import re
import statistics
import sys
from datetime import datetime, timezone

NOTES_OPEN = '<!-- notes -->'
NOTES_CLOSE = '<!-- /notes -->'
NOTES_RE = re.compile(re.escape(NOTES_OPEN) + r'\n?(.*?)' + re.escape(NOTES_CLOSE), re.S)

# Column order and headings for the (target, store) pairs we know; others follow.
KNOWN_COLUMNS = [
    (('portcullis', 'sqlite'), 'Portcullis (SQLite)'),
    (('oidc-provider', None), 'oidc-provider'),  # any store: it has only the in-memory one
    (('portcullis', 'postgres'), 'Portcullis (PostgreSQL)'),
]
BASE = ('portcullis', 'sqlite')  # the ratio compares this ...
OTHER_TARGET = 'oidc-provider'  # ... with this target
STORE_NAMES = {'sqlite': 'SQLite', 'postgres': 'PostgreSQL', 'memory': 'in-memory'}
REQUIRED = ('target', 'store', 'figure', 'value')


def fail(message, status=1):
    print(f'report.py: {message}', file=sys.stderr)
    sys.exit(status)


def warn(message):
    print(f'report.py: warning: {message}', file=sys.stderr)


def natural_key(name):
    """round-10-... sorts after round-9-..."""
    return [int(part) if part.isdigit() else part for part in re.split(r'(\d+)', name)]


# ---------------------------------------------------------------- reading


class Results:
    def __init__(self, directory):
        self.directory = directory
        self.figures = {}  # figure -> {label, unit, better}
        self.order = []  # the figures in order of first appearance (see add)
        self.samples = {}  # (figure, target, store) -> [value, ...]
        self.rounds = set()
        self.previous = None  # the figure before, in the file being read

    def start_file(self):
        self.previous = None

    def ordered_figures(self):
        return [(figure, self.figures[figure]) for figure in self.order]

    def add(self, row, where):
        missing = [key for key in REQUIRED if key not in row]
        if missing:
            warn(f'{where}: no {", ".join(missing)}; line skipped')
            return
        value = row['value']
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            warn(f'{where}: value {value!r} is not a finite number; line skipped')
            return
        figure = str(row['figure'])
        better = row.get('better', 'higher')
        if better not in ('higher', 'lower'):
            warn(f'{where}: better={better!r} is neither "higher" nor "lower"; taken as "higher"')
            better = 'higher'
        if figure not in self.figures:
            # A figure first seen in a later file goes right after the figure that precedes
            # it there, so a target that skipped some figures does not push them to the end.
            at = self.order.index(self.previous) + 1 if self.previous in self.figures else 0
            self.order.insert(at, figure)
        self.previous = figure
        meta = self.figures.setdefault(figure, {
            'label': row.get('label') or figure,
            'unit': row.get('unit') or '',
            'better': better,
        })
        if meta['better'] != better or meta['unit'] != (row.get('unit') or ''):
            warn(f'{where}: figure {figure} disagrees with its first occurrence on unit/better; '
                 'the first occurrence wins')
        key = (figure, str(row['target']), str(row['store']))
        self.samples.setdefault(key, []).append(float(value))

    def pairs(self):
        return {(target, store) for (_, target, store) in self.samples}

    def median(self, figure, pair):
        values = self.samples.get((figure, *pair))
        return (statistics.median(values), len(values)) if values else (None, 0)


def read_results(directory):
    results = Results(directory)
    files = sorted((n for n in os.listdir(directory) if n.endswith('.jsonl')), key=natural_key)
    for name in files:
        match = re.match(r'round-(\d+)-', name)
        if match:
            results.rounds.add(int(match.group(1)))
        results.start_file()
        with open(os.path.join(directory, name), encoding='utf-8') as f:
            for number, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    warn(f'{name}:{number}: not JSON; line skipped')
                    continue
                if not isinstance(row, dict):
                    warn(f'{name}:{number}: not a JSON object; line skipped')
                    continue
                results.add(row, f'{name}:{number}')
    return files, results


def read_meta(directory):
    path = os.path.join(directory, 'meta.json')
    try:
        with open(path, encoding='utf-8') as f:
            meta = json.load(f)
    except FileNotFoundError:
        warn(f'{path} not found; the report will say little about the machine')
        return {}
    except (OSError, json.JSONDecodeError) as error:
        warn(f'{path}: {error}; ignored')
        return {}
    return meta if isinstance(meta, dict) else {}


# ---------------------------------------------------------------- columns and numbers


def columns_for(pairs):
    """[(heading, pair)] in display order for the (target, store) pairs present."""
    columns, taken = [], set()
    other_stores = sorted(store for target, store in pairs if target == OTHER_TARGET)
    for (target, store), heading in KNOWN_COLUMNS:
        if store is None:
            for other in other_stores:
                suffix = f' ({STORE_NAMES.get(other, other)})' if len(other_stores) > 1 else ''
                columns.append((heading + suffix, (target, other)))
                taken.add((target, other))
        elif (target, store) in pairs:
            columns.append((heading, (target, store)))
            taken.add((target, store))
    for target, store in sorted(pairs - taken):
        columns.append((f'{target} ({STORE_NAMES.get(store, store)})', (target, store)))
    return columns


def ratio_of(base, other, better):
    """Portcullis's advantage: > 1 means Portcullis is ahead."""
    if base is None or other is None or base <= 0 or other <= 0:
        return None
    return base / other if better == 'higher' else other / base


def format_number(value):
    magnitude = abs(value)
    if magnitude >= 100:
        return f'{value:,.0f}'
    if magnitude >= 10:
        return f'{value:.1f}'
    if magnitude >= 1:
        return f'{value:.2f}'
    if magnitude == 0:
        return '0'
    return f'{value:.3g}'


def format_value(value, unit, runs, expected_runs):
    if value is None:
        return '—'
    text = format_number(value) + (f' {unit}' if unit else '')
    if expected_runs and runs != expected_runs:
        text += f' (n={runs})'
    return text


def format_ratio(ratio):
    if ratio is None:
        return '—'
    if ratio >= 10:
        text = f'{ratio:,.0f}'
    elif ratio >= 1:
        text = f'{ratio:.1f}'
        if text == '1.0' and ratio != 1:
            text = f'{ratio:.2f}'
    else:
        text = f'{ratio:.2f}'
        if text == '1.00':
            text = f'{ratio:.3f}'
    return text + '×'


def escape_cell(text):
    return str(text).replace('|', '\\|').replace('\n', ' ')


# ---------------------------------------------------------------- the report


def describe_when_where(meta):
    lines = []
    machine = meta.get('machine') or {}
    if meta.get('date'):
        when = meta['date']
        if meta.get('finished'):
            when += f' to {meta["finished"]}'
        lines.append(f'- **When:** {when}')
    where = []
    if machine.get('nproc'):
        where.append(f'{machine["nproc"]} cores')
    if machine.get('cpu'):
        where.append(str(machine['cpu']))
    if machine.get('memory_gib'):
        where.append(f'{machine["memory_gib"]} GiB memory')
    if machine.get('os'):
        where.append(str(machine['os']))
    if machine.get('kernel'):
        where.append(f'kernel {machine["kernel"]}')
    if where:
        lines.append(f'- **Machine:** {", ".join(where)}')
    if meta.get('portcullis_commit'):
        commit = str(meta['portcullis_commit'])
        dirty = ' with uncommitted changes' if meta.get('portcullis_dirty') else ''
        lines.append(f'- **Portcullis:** commit `{commit[:12]}`{dirty}, built with {meta.get("rustc", "rustc ?")}'
                     ' (`cargo build --release`)')
    if meta.get('oidc_provider_version') or meta.get('node'):
        lines.append(f'- **oidc-provider:** {meta.get("oidc_provider_version", "?")} on Node.js '
                     f'{meta.get("node", "?")} (`bench/compare/oidc-provider/server.mjs`)')
    postgres = meta.get('postgres')
    if isinstance(postgres, dict):
        lines.append(f'- **PostgreSQL:** {postgres.get("server_version") or "version unknown"}, '
                     'on the same machine')
    if meta.get('alg'):
        lines.append(f'- **Signing algorithm:** {meta["alg"]}')
    return lines


def build_report(results, meta, files, previous_notes, chart_link):
    pairs = results.pairs()
    columns = columns_for(pairs)
    other_pairs = [pair for _, pair in columns if pair[0] == OTHER_TARGET]
    other = other_pairs[0] if other_pairs else None
    has_ratio = BASE in pairs and other is not None

    rounds = len(results.rounds) or max((len(v) for v in results.samples.values()), default=0)
    expected = meta.get('runs') if isinstance(meta.get('runs'), int) else rounds

    out = ['# Portcullis vs oidc-provider', '']
    if meta.get('quick'):
        out += ['> **Smoke run (QUICK=1): shortened workloads. Not for comparison.**', '']
    out += describe_when_where(meta)
    out += [
        f'- **Raw results:** {len(files)} result files in the results folder '
        f'`{os.path.basename(os.path.normpath(results.directory))}` (`bench/compare/results/` is git-ignored)',
        '',
        'Re-run (builds both servers, installs the pinned oidc-provider, runs the alternated rounds '
        'and rewrites this file and the chart):',
        '',
        '```bash',
        'bash bench/compare/run.sh                        # RUNS=5 by default',
        'COMPARE_POSTGRES=auto bash bench/compare/run.sh  # also Portcullis on PostgreSQL',
        '```',
        '',
        '## Results',
        '',
    ]

    headings = ['figure'] + [heading for heading, pair in columns if pair in (BASE, other)]
    if has_ratio:
        headings += ['ratio', 'ahead?']
    extra = [(heading, pair) for heading, pair in columns if pair not in (BASE, other)]
    headings += [heading for heading, _ in extra]
    out.append('| ' + ' | '.join(headings) + ' |')
    out.append('| ' + ' | '.join('---' if h == 'figure' else ':---:' if h == 'ahead?' else '---:'
                                 for h in headings) + ' |')

    ratios = []
    for figure, info in results.ordered_figures():
        arrow = '↑' if info['better'] == 'higher' else '↓'
        cells = [f'{escape_cell(info["label"])} {arrow}']
        values = {}
        for heading, pair in columns:
            values[pair] = results.median(figure, pair)
        for pair in (BASE, other):
            if pair in pairs:
                value, runs = values[pair]
                cells.append(format_value(value, info['unit'], runs, expected))
        if has_ratio:
            ratio = ratio_of(values[BASE][0], values[other][0], info['better'])
            ratios.append((info['label'], ratio))
            cells.append(format_ratio(ratio))
            cells.append('—' if ratio is None else ('yes' if ratio > 1 else '**no**'))
        for _, pair in extra:
            value, runs = values[pair]
            cells.append(format_value(value, info['unit'], runs, expected))
        out.append('| ' + ' | '.join(escape_cell(cell) for cell in cells) + ' |')
    out.append('')

    if chart_link and has_ratio:
        out += [f'![Portcullis advantage per figure, log scale]({chart_link})', '']

    out += ['## Notes', '']
    notes = []
    if expected:
        notes.append(f'Every value is the median of {expected} runs (rounds), one fresh server process '
                     'per run; a value from fewer runs is marked (n=…). The rounds alternate the order: '
                     'odd rounds start with Portcullis, even rounds with oidc-provider.')
    if has_ratio:
        notes.append('ratio = how many times better Portcullis (SQLite) is than oidc-provider on that '
                     'figure: Portcullis ÷ oidc-provider where higher is better (↑), oidc-provider ÷ '
                     'Portcullis where lower is better (↓). Above 1× Portcullis is ahead.')
    notes.append('— means the target produced no such figure (for example, its run failed).')
    notes.append('Both servers run on 127.0.0.1 on the same machine as the load driver '
                 '(`compare-driver`), which starts each server, measures its start-up time and '
                 'memory (RSS) and stops it afterwards.')
    max_entries = meta.get('oidc_provider_memory_max_entries')
    entries = f'{max_entries:,} entries' if isinstance(max_entries, int) else 'a large capacity'
    notes.append('oidc-provider keeps everything (sessions, grants, codes, tokens, clients) in its '
                 f'in-memory adapter, with the store enlarged to {entries} (`MEMORY_MAX_ENTRIES`): the '
                 "library's default LRU of 1,000 entries would forget sessions during a run. Nothing it "
                 'stores survives a restart. Portcullis keeps its state in its database (SQLite in a '
                 'fresh data directory per run, or a freshly created PostgreSQL database), with its '
                 'default database settings.')
    failed = meta.get('failed_runs') or []
    if failed:
        listed = ', '.join(f'round {f.get("round")} {f.get("target")} ({f.get("store")}, exit {f.get("exit")})'
                           for f in failed if isinstance(f, dict))
        notes.append(f'**{len(failed)} driver run(s) failed** and count only with the figures they '
                     f'printed before failing: {listed}.')
    out += [f'- {note}' for note in notes]
    out += ['', NOTES_OPEN]
    kept = previous_notes.strip('\n')
    if kept.strip():
        out.append(kept)
    out += [NOTES_CLOSE, '']
    return '\n'.join(out), ratios


def previous_notes_of(path):
    try:
        with open(path, encoding='utf-8') as f:
            match = NOTES_RE.search(f.read())
    except FileNotFoundError:
        return ''
    return match.group(1) if match else ''


# ---------------------------------------------------------------- the chart


def chart_date(meta):
    date = meta.get('date')
    if isinstance(date, str) and len(date) >= 10:
        return date[:10]
    return datetime.now(timezone.utc).strftime('%Y-%m-%d')


def draw_chart(ratios, meta, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    labels = [label for label, _ in ratios]
    known = [r for _, r in ratios if r is not None]
    if not known:
        warn('no figure has values for both servers; no chart drawn')
        return False
    # From at most 0.5× to at least 2×, with room for the bar labels.
    low, high = min(min(known), 0.5) / 1.7, max(max(known), 2) * 1.7

    fig, ax = plt.subplots(figsize=(10, 7), dpi=100)
    ahead, behind, none = '#2e8b57', '#d9534f', '#999999'
    for y, ratio in enumerate(r for _, r in ratios):
        if ratio is None:
            ax.text(1, y, '  no data', va='center', ha='left', fontsize=8, color=none)
            continue
        colour = ahead if ratio > 1 else behind
        ax.barh(y, ratio - 1, left=1, height=0.62, color=colour)
        text = format_ratio(ratio)
        if ratio >= 1:
            ax.text(ratio * 1.04, y, text, va='center', ha='left', fontsize=8)
        else:
            ax.text(ratio / 1.04, y, text, va='center', ha='right', fontsize=8)
    ax.axvline(1, color='black', linewidth=1)
    ax.set_xscale('log')
    ax.set_xlim(low, high)
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    steps = (1, 2, 5) if math.log10(high / low) <= 2.5 else (1,)  # 1-2-5 ticks, or decades only
    ticks = {step * 10.0 ** d for d in decades for step in steps if low <= step * 10.0 ** d <= high}
    ticks = sorted(ticks | {t for t in (0.5, 2) if low <= t <= high})  # always some tick left of 1×
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda t, _: f'{t:g}×'))
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels([_wrap(label, 46) for label in labels], fontsize=8)
    ax.set_ylim(len(labels) - 0.5, -0.5)  # first figure at the top
    ax.grid(axis='x', color='#dddddd', linewidth=0.6)
    ax.set_axisbelow(True)
    # Two lines: on one, the end of the label ran past the figure's edge.
    ax.set_xlabel('Portcullis (SQLite) advantage over oidc-provider, log scale\n'
                  '(right of 1×: Portcullis ahead)')
    version = meta.get('oidc_provider_version')
    op = f'oidc-provider {version}' if version else 'oidc-provider'
    runs = meta.get('runs')
    subtitle = f'median of {runs} runs, {chart_date(meta)}' if runs else chart_date(meta)
    if meta.get('quick'):
        subtitle += ', QUICK smoke run'
    ax.set_title(f'Portcullis vs {op}\n{subtitle}', fontsize=11)
    ax.legend(handles=[Patch(color=ahead, label='Portcullis ahead'), Patch(color=behind, label='Portcullis behind')],
              loc='upper center', bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _wrap(text, width):
    """Wrap a long label onto two lines at a space near the middle."""
    if len(text) <= width:
        return text
    cut = text.rfind(' ', 0, width)
    cut = cut if cut > 0 else width
    return text[:cut] + '\n' + text[cut:].lstrip()


# ---------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(description='Write REPORT.md and chart.png from run.sh results.')
    parser.add_argument('results', help='a results folder of run.sh (holding *.jsonl and meta.json)')
    parser.add_argument('--out', default='REPORT.md', help='the Markdown report to (re)write (default: REPORT.md)')
    parser.add_argument('--chart', help='the PNG chart to write (needs matplotlib); no chart without it')
    args = parser.parse_args()

    if args.chart and importlib.util.find_spec('matplotlib') is None:
        fail('the chart needs matplotlib: pip install -r bench/compare/requirements.txt', 2)
    if not os.path.isdir(args.results):
        fail(f'{args.results} is not a folder', 2)
    files, results = read_results(args.results)
    if not files:
        fail(f'no results in {args.results}: no *.jsonl files (did every driver run fail before starting?)')
    if not results.samples:
        fail(f'no results in {args.results}: its {len(files)} *.jsonl file(s) hold no result lines')
    meta = read_meta(args.results)

    chart_link = None
    if args.chart:
        chart_link = os.path.relpath(os.path.abspath(args.chart), os.path.dirname(os.path.abspath(args.out)))
    text, ratios = build_report(results, meta, files, previous_notes_of(args.out), chart_link)

    drawn = False
    if args.chart:
        drawn = draw_chart(ratios, meta, args.chart)
    if args.chart and not drawn:
        text = text.replace(f'![Portcullis advantage per figure, log scale]({chart_link})\n\n', '')
    with open(args.out, 'w', encoding='utf-8') as f:
        f.write(text)
    print(f'report.py: wrote {args.out}' + (f' and {args.chart}' if drawn else ''), file=sys.stderr)


if __name__ == '__main__':
    main()
