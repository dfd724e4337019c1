"""Drives the hopscope kernel with the real jupyter_client and prints one JSON object of what it saw.

Usage: /usr/bin/python3 driver.py SCENARIO[,SCENARIO...]  (the kernelspec must be on JUPYTER_PATH; the
kernel runs with cwd = the repository root). Called from kernel-protocol.test.ts, which asserts on the JSON.
"""
import base64
import json
import os
import sys
import time
import uuid
from queue import Empty

from jupyter_client.manager import KernelManager
from jupyter_client.session import Session

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
WIDGET_VIEW = 'application/vnd.jupyter.widget-view+json'


def simplify(msg):
    out = {'type': msg['msg_type'], 'content': msg['content']}
    if msg.get('buffers'):
        out['buffers'] = [base64.b64encode(bytes(b)).decode() for b in msg['buffers']]
    if msg['metadata']:
        out['metadata'] = msg['metadata']
    return out


class Driver:
    def __init__(self, km, kc, env_extra):
        self.km, self.kc, self.env_extra = km, kc, env_extra
        self.stray = []
        self.held = {}

    def shell_reply(self, msg_id, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                m = self.kc.get_shell_msg(timeout=max(0.05, deadline - time.time()))
            except Empty:
                break
            if m['parent_header'].get('msg_id') == msg_id:
                return m
        return None

    def wait_for(self, msg_id, pred, timeout=30):
        """Reads iopub until a message for msg_id satisfies pred; keeps what it read for iopub_until_idle."""
        kept = self.held.setdefault(msg_id, [])
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                m = self.kc.get_iopub_msg(timeout=max(0.05, deadline - time.time()))
            except Empty:
                break
            if m['parent_header'].get('msg_id') != msg_id:
                self.stray.append(simplify(m))
                continue
            kept.append(simplify(m))
            if pred(kept[-1]):
                return True
        return False

    def iopub_until_idle(self, msg_id, timeout=60):
        out = self.held.pop(msg_id, [])
        if any(o['type'] == 'status' and o['content']['execution_state'] == 'idle' for o in out):
            return out
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                m = self.kc.get_iopub_msg(timeout=max(0.05, deadline - time.time()))
            except Empty:
                break
            if m['parent_header'].get('msg_id') != msg_id:
                self.stray.append(simplify(m))
                continue
            out.append(simplify(m))
            if m['msg_type'] == 'status' and m['content']['execution_state'] == 'idle':
                return out
        out.append({'type': 'TIMEOUT'})
        return out

    def run(self, code, timeout=60, **kw):
        msg_id = self.kc.execute(code, **kw)
        outputs = self.iopub_until_idle(msg_id, timeout)
        reply = self.shell_reply(msg_id, 10)
        return {'outputs': outputs, 'reply': reply['content'] if reply else None}

    def send_shell(self, msg_type, content, buffers=None, metadata=None):
        msg = self.kc.session.msg(msg_type, content, metadata=metadata or {})
        self.kc.session.send(self.kc.shell_channel.socket, msg, buffers=buffers)
        return msg['header']['msg_id']

    def comm(self, msg_type, content, buffers=None):
        msg_id = self.send_shell(msg_type, content, buffers, {'version': '2.1.0'})
        return self.iopub_until_idle(msg_id, 30)


def start(env_extra):
    km = KernelManager(kernel_name='hopscope')
    t0 = time.time()
    km.start_kernel(cwd=REPO, env={**os.environ, **env_extra})
    kc = km.client()
    kc.start_channels()
    msg_id = kc.kernel_info()
    reply = None
    while reply is None and time.time() - t0 < 60:
        try:
            m = kc.get_shell_msg(timeout=0.02)
        except Empty:
            continue
        if m['parent_header'].get('msg_id') == msg_id:
            reply = m
    startup = time.time() - t0
    # IOPub is a PUB/SUB pair: until our subscription reaches the kernel its messages are dropped (ZeroMQ's
    # slow joiner). Nudge with kernel_info until an iopub message arrives, as jupyter_server does.
    for _ in range(100):
        kc.kernel_info()
        try:
            kc.get_iopub_msg(timeout=0.2)
            break
        except Empty:
            pass
    while True:
        try:
            kc.get_iopub_msg(timeout=0.2)
        except Empty:
            break
    while True:
        try:
            kc.get_shell_msg(timeout=0.05)
        except Empty:
            break
    return km, kc, startup, reply


# ---------------------------------------------------------------- scenarios

def s_basic(d):
    r = {}
    r['stream'] = d.run('console.log("hello"); console.error("warn")')
    r['result'] = d.run('const x: number = 40\nx + 2')
    r['string'] = d.run('"abc"')
    r['html'] = d.run('({ _repr_html_() { return "<b>bold</b>" } })')
    r['arquero'] = d.run('require("arquero").from([{a: 1, b: "x"}, {a: 2, b: "y"}])')
    r['display'] = d.run('import * as tslab from "tslab"\ntslab.display.html("<i>shown</i>")')
    r['tla'] = d.run('await new Promise((r) => setTimeout(r, 10)); x * 2')
    r['error'] = d.run('function f() { throw new TypeError("bad thing") }\nf()')
    r['compile_error'] = d.run('const y: string = 5')
    r['after_error'] = d.run('x')
    r['no_value'] = d.run('let z = 1')
    r['lsmagic'] = d.run('%lsmagic')
    r['help_flag'] = d.run('%logitlens --help')
    r['help_magic'] = d.run('%help recallgap')
    r['bad_option'] = d.run('%logitlens --bogus 3')
    r['bad_value'] = d.run('%logitlens --top-k abc')
    r['unknown_magic'] = d.run('%nosuchmagic')
    r['state_kept'] = d.run('x + 1')
    r['mixed'] = d.run('const before = 1\n%lsmagic\nbefore + 10')
    r['hs_signal'] = d.run('hs.signal().aborted')
    r['is_complete'] = None
    ic = d.send_shell('is_complete_request', {'code': 'function f() {'})
    rep = d.shell_reply(ic, 30)
    r['is_complete'] = rep['content'] if rep else None
    ci = d.send_shell('comm_info_request', {})
    rep = d.shell_reply(ci, 30)
    r['comm_info_empty'] = {'type': rep['msg_type'], 'content': rep['content']} if rep else None
    return r


def s_magics(d):
    r = {}
    r['load'] = d.run('%load fake-model --as m')
    r['model_var'] = d.run('[m.numLayers, _.numLayers]')
    r['hooks'] = d.run('%hooks --filter resid_post')
    r['hooks_bound'] = d.run('_.length')
    r['backend'] = d.run('%backend cpu')
    r['bad_backend'] = d.run('%backend nosuch')
    r['spec_error'] = d.run('%%spec\n{"kind": "nope", "version": 1}')
    r['spec_json_error'] = d.run('%%spec\n{not json')
    r['dry_run'] = d.run('%freeze --layers 0-2 --until 3 --dry-run')
    r['logitlens'] = d.run('%logitlens --layers 0-3 --top-k 3 --as ll')
    r['bound'] = d.run('[ll.kind, ll.summary.layers, _.kind]')
    comm_id = None
    for o in r['logitlens']['outputs']:
        if o['type'] == 'comm_open':
            comm_id = o['content']['comm_id']
    r['run_cell'] = d.comm('comm_msg', {'comm_id': comm_id, 'data': {'method': 'custom', 'content': {'type': 'run-cell', 'view': 'probe-accuracy', 'layer': 2, 'id': 7}}}) if comm_id else None
    # The click's work runs queued; collect its custom answer on iopub.
    got = []
    deadline = time.time() + 10
    while time.time() < deadline and not any(m.get('content', {}).get('data', {}).get('method') == 'custom' for m in got):
        try:
            m = d.kc.get_iopub_msg(timeout=0.5)
        except Empty:
            continue
        got.append(simplify(m))
    r['run_cell_answer'] = [m for m in got + d.stray if m['type'] == 'comm_msg' and m['content']['data'].get('method') == 'custom']
    r['nowidget'] = d.run('%recallgap --no-widget --limit 2')
    # A library call in a cell: its progress bar is one display, updated in place (kernel/progress-bar.ts).
    r['progress'] = d.run('(await hs.runExperiment({ kind: "logit-lens", version: 1, layers: [0, 1, 2, 3], stepMs: 150 }, { model: m })).summary.layers')
    return r


def s_widgets(d):
    r = {}
    r['create'] = d.run(
        'const w = widgets.create({state: {view: "demo", title: "Demo", data: {values: new Float32Array([1, 2, 3])}, progress: null, error: null, count: 0}})\n'
        'const pings: any[] = []\n'
        'w.on("custom", (c) => { pings.push(c); w.send({type: "pong", got: c}, [new Uint8Array([9, 8, 7])]) })\n'
        'w.on("change", () => { w.set({count: (w.get("count") as number) + 1}) })\n'
        'w.display()\n'
        'w.id'
    )
    comm_id = None
    for o in r['create']['outputs']:
        if o['type'] == 'comm_open':
            comm_id = o['content']['comm_id']
    r['comm_id'] = comm_id
    r['update'] = d.comm('comm_msg', {'comm_id': comm_id, 'data': {'method': 'update', 'state': {'title': 'Changed'}, 'buffer_paths': [['blob']]}}, buffers=[b'\x01\x02\x03\x04'])
    r['applied'] = d.run('[w.get("title"), (w.get("blob") as Uint8Array).length, w.get("count")]')
    r['custom'] = d.comm('comm_msg', {'comm_id': comm_id, 'data': {'method': 'custom', 'content': {'type': 'ping', 'n': 1}}})
    r['pings'] = d.run('pings.length')
    r['request_state'] = d.comm('comm_msg', {'comm_id': comm_id, 'data': {'method': 'request_state'}})
    control_id = uuid.uuid4().hex
    r['control_open'] = d.comm('comm_open', {'comm_id': control_id, 'target_name': 'jupyter.widget.control', 'data': {}})
    r['control_states'] = d.comm('comm_msg', {'comm_id': control_id, 'data': {'method': 'request_states'}})
    ci = d.send_shell('comm_info_request', {'target_name': 'jupyter.widget'})
    rep = d.shell_reply(ci, 30)
    r['comm_info'] = {'type': rep['msg_type'], 'content': rep['content']} if rep else None
    r['unknown_target'] = d.comm('comm_open', {'comm_id': uuid.uuid4().hex, 'target_name': 'no.such.target', 'data': {}})
    r['close'] = d.run('w.close(); w.isOpen')
    return r


def s_hmac(d):
    r = {}
    bad = Session(key=b'not-the-key', username='attacker')
    msg = bad.msg('execute_request', {'code': 'globalThis.pwned = 1', 'silent': False, 'store_history': True,
                                      'user_expressions': {}, 'allow_stdin': False, 'stop_on_error': True})
    bad.send(d.kc.shell_channel.socket, msg)
    r['bad_reply'] = d.shell_reply(msg['header']['msg_id'], 1.5) is not None
    r['after'] = d.run('(globalThis as any).pwned === undefined ? "not executed" : "EXECUTED"')
    return r


def started(o):
    return o['type'] == 'execute_input'


def printed(text):
    return lambda o: o['type'] == 'stream' and text in o['content'].get('text', '')


def idle(o):
    return o['type'] == 'status' and o['content']['execution_state'] == 'idle'


def s_interrupt(d):
    r = {}
    t0 = time.time()
    mark = lambda name: r.setdefault('timeline', []).append([name, round(time.time() - t0, 2)])
    d.run('const done: number[] = []; const ignored: number[] = []')
    # 1: SIGINT (the kernelspec's interrupt_mode "signal"); the loop checks hs.signal() and stops cleanly.
    mid = d.kc.execute('for (let i = 0; i < 500; i++) { hs.signal().throwIfAborted(); await new Promise((r) => setTimeout(r, 20)); done.push(i); if (i === 0) console.log("looping") }')
    # Interrupt once an iteration has finished (an event, not a fixed sleep: a loaded machine may need longer).
    d.wait_for(mid, printed('looping'))
    t = time.time()
    d.km.interrupt_kernel()
    r['signal'] = {'outputs': d.iopub_until_idle(mid, 30)}
    mark('signal')
    r['signal']['seconds'] = time.time() - t
    rep = d.shell_reply(mid, 10)
    r['signal']['reply'] = rep['content'] if rep else None
    r['kept'] = d.run('done.length')
    mark('kept')
    # 2: interrupt_request on control (interrupt_mode "message"); this loop ignores the signal, so the kernel
    # stops waiting for it after the grace period.
    mid = d.kc.execute('for (let i = 0; i < 150; i++) { await new Promise((r) => setTimeout(r, 20)); ignored.push(i); if (i === 0) console.log("looping") }')
    d.wait_for(mid, printed('looping'))
    imsg = d.kc.session.msg('interrupt_request', {})
    t = time.time()
    d.kc.control_channel.send(imsg)
    ir = None
    try:
        ir = d.kc.get_control_msg(timeout=5)
    except Empty:
        pass
    r['control_reply'] = ir['msg_type'] if ir else None
    mark('control_reply')
    r['message'] = {'outputs': d.iopub_until_idle(mid, 30)}
    mark('message')
    r['message']['seconds'] = time.time() - t
    rep = d.shell_reply(mid, 10)
    r['message']['reply'] = rep['content'] if rep else None
    # 3: a synchronous infinite loop, stopped by SIGINT inside the vm.
    mid = d.kc.execute('let spins = 0\nwhile (true) { spins++ }')
    # execute_input must arrive while the loop blocks the kernel's event loop.
    r['sync_input_seen'] = d.wait_for(mid, started, 10)
    time.sleep(0.8)
    # As a user would: press again if the first SIGINT came before the loop was running.
    sent = 0
    for _ in range(5):
        d.km.interrupt_kernel()
        sent += 1
        if d.wait_for(mid, idle, 3):
            break
    r['sync'] = {'outputs': d.iopub_until_idle(mid, 30), 'sigints': sent}
    mark('sync')
    rep = d.shell_reply(mid, 10)
    r['sync']['reply'] = rep['content'] if rep else None
    mark('sync')
    # 4: an experiment sweep (stand-in library), interrupted: the finished rows are kept in _ and --as.
    r['load'] = d.run('%load fake-model')
    mark('load')
    mid = d.kc.execute('%crosspatch --layers 0-9 --set stepMs=300 --as cp')
    d.wait_for(mid, lambda o: o['type'] == 'comm_msg' and ((o['content']['data'].get('state') or {}).get('progress') or {}).get('done', 0) >= 1)
    d.km.interrupt_kernel()
    r['sweep'] = {'outputs': d.iopub_until_idle(mid, 30)}
    mark('sweep')
    rep = d.shell_reply(mid, 10)
    r['sweep']['reply'] = rep['content'] if rep else None
    mark('sweep')
    r['sweep_kept'] = d.run('[cp.summary.interrupted, cp.summary.rows, _.summary.rows, cp.table.numRows()]')
    mark('sweep_kept')
    r['alive'] = d.run('1 + 1')
    mark('alive')
    return r


def s_many(d):
    r = {}
    setup = d.run('const tf = require("@tensorflow/tfjs-core"); require("@tensorflow/tfjs-backend-cpu"); await tf.setBackend("cpu"); tf.getBackend()')
    r['setup'] = setup['reply']['status'] if setup['reply'] else None
    before = d.run('tf.memory().numTensors')
    statuses = {'ok': 0, 'error': 0, 'other': 0}
    t = time.time()
    for i in range(200):
        if i % 10 == 3:
            code = 'tf.tidy(() => { const a = tf.ones([8, 8]); tf.matMul(a, a); throw new Error("boom %d") })' % i
        elif i % 10 == 7:
            code = 'const q%d: number = "not a number"' % i
        else:
            code = 'tf.tidy(() => tf.sum(tf.matMul(tf.ones([8, 8]), tf.ones([8, 8]))).dataSync()[0]) + %d' % i
        res = d.run(code, 30)
        st = res['reply']['status'] if res['reply'] else 'none'
        statuses[st if st in statuses else 'other'] += 1
        if i < 10:
            r.setdefault('first', []).append({'code': code, 'status': st, 'outputs': [o for o in res['outputs'] if o['type'] in ('execute_result', 'error')]})
    r['seconds'] = time.time() - t
    r['statuses'] = statuses
    after = d.run('tf.memory().numTensors')
    r['tensors_before'] = before['outputs']
    r['tensors_after'] = after['outputs']
    return r


def s_real(d):
    """The real library: the engine now (src/engine/backend.ts); model magics once src/index.ts exists."""
    r = {'backend': d.run('%backend cpu'), 'has_index': os.path.exists(os.path.join(REPO, 'src', 'index.ts'))}
    if r['has_index']:
        fixtures = os.environ.get('HOPSCOPE_FIXTURES', os.path.join(REPO, 'test', 'fixtures', 'hf'))
        r['load'] = d.run('%%load "%s" --as model' % os.path.join(fixtures, 'llava_tiny_A'), 300)
        r['hooks'] = d.run('%hooks --part lm --filter resid_post')
        r['hooks_bound'] = d.run('[_.length, model.numLayers]')
        r['kinds'] = d.run('hs.EXPERIMENT_KINDS.length')
        r['dry_run'] = d.run('%logitlens --layers 0-1 --top-k 3 --dry-run')
        r['spec_error'] = d.run('%knockout --set window=-3')
        data = d.env_extra.get('HOPSCOPE_TEST_DATA')
        if data:
            r['logitlens'] = d.run('%%logitlens --data "%s" --layers 0-1 --top-k 3 --limit 1 --as ll' % data, 300)
            r['ll'] = d.run('[ll.kind, ll.table.numRows() > 0]')
            comm_id = next((o['content']['comm_id'] for o in r['logitlens']['outputs'] if o['type'] == 'comm_open'), None)
            if comm_id:
                d.comm('comm_msg', {'comm_id': comm_id, 'data': {'method': 'custom', 'content': {'type': 'run-cell', 'view': 'logit-lens', 'layer': 1, 'position': 0}}})
                got = []
                deadline = time.time() + 120
                while time.time() < deadline and not any(m['type'] == 'comm_msg' and m['content']['data'].get('method') == 'custom' for m in got + d.stray):
                    try:
                        got.append(simplify(d.kc.get_iopub_msg(timeout=0.5)))
                    except Empty:
                        pass
                r['run_cell'] = [m for m in got + d.stray if m['type'] == 'comm_msg' and m['content']['data'].get('method') == 'custom']
    else:
        r['missing'] = d.run('hs.loadModel')
    return r


def s_conformance(d):
    r = {}
    # The first execute right after the handshake (start() has just had kernel_info answered), and a
    # kernel_info on control while it is pending: answered at once unless the event loop is blocked.
    t = time.time()
    mid = d.kc.execute('1 + 1')
    d.kc.control_channel.send(d.kc.session.msg('kernel_info_request', {}))
    try:
        d.kc.get_control_msg(timeout=120)
        r['control_seconds'] = time.time() - t
    except Empty:
        r['control_seconds'] = None
    outputs = d.iopub_until_idle(mid, 120)
    r['first_seconds'] = time.time() - t
    rep = d.shell_reply(mid, 10)
    r['first'] = {'outputs': outputs, 'reply': rep['content'] if rep else None}
    t = time.time()
    r['second'] = d.run('2 + 2')
    r['second_seconds'] = time.time() - t
    r['user_expressions'] = d.run('const ue: number = 20', user_expressions={'ok': 'ue + 1', 'obj': '{k: ue}', 'bad': 'nosuch.x'})
    r['ue_after_error'] = d.run('throw new Error("cell fails")', user_expressions={'ok': 'ue'})
    d.run('const h1 = "first"')
    d.run('h1 + " second"')
    d.run('"silent"', silent=True)
    d.run('/* not stored */ 0', store_history=False)
    def hist(**kw):
        mid = d.kc.history(**kw)
        rep = d.shell_reply(mid, 30)
        return rep['content'] if rep else None
    r['tail'] = hist(hist_access_type='tail', n=2)
    r['tail_output'] = hist(hist_access_type='tail', n=1, output=True)
    r['range'] = hist(hist_access_type='range', session=0, start=1, stop=3)
    r['search'] = hist(hist_access_type='search', pattern='h1*')
    r['other_session'] = hist(hist_access_type='range', session=-1, start=1, stop=3)
    return r


def s_completion(d):
    r = {}
    def ask(kind, code, pos=None):
        pos = len(code) if pos is None else pos
        mid = d.kc.complete(code, pos) if kind == 'complete' else d.kc.inspect(code, pos)
        rep = d.shell_reply(mid, 60)
        return rep['content'] if rep else None
    r['hs'] = ask('complete', 'hs.load')
    r['hs_inspect'] = ask('inspect', 'hs.loadModel', 10)
    r['magic_names'] = ask('complete', '%rec')
    r['magic_options'] = ask('complete', '%recallgap --')
    r['magic_inspect'] = ask('inspect', '%recallgap --limit 3', 4)
    r['around_magic'] = ask('complete', 'const s = "abc"\n%lsmagic\ns.toUpper')
    r['backend'] = d.run('%backend cpu')
    r['load'] = d.run('%load teaching', 300)
    r['hook_points'] = ask('complete', "const at = 'lm.blocks.1.")
    return r


SCENARIOS = {'conformance': s_conformance, 'completion': s_completion, 'real': s_real, 'basic': s_basic, 'magics': s_magics, 'widgets': s_widgets, 'hmac': s_hmac, 'interrupt': s_interrupt, 'many': s_many}


def orphan(env_extra):
    """Starts a kernel, prints its pid and waits to be killed (the test kills this process, the kernel's parent)."""
    km, kc, startup, info = start(env_extra)
    print(json.dumps({'kernel_pid': km.provisioner.pid if getattr(km, 'provisioner', None) else km.kernel.pid, 'parent_pid': os.getpid()}), flush=True)
    time.sleep(600)


def main():
    if sys.argv[1] == 'orphan':
        return orphan(json.loads(sys.argv[2]) if len(sys.argv) > 2 else {})
    names = sys.argv[1].split(',')
    env_extra = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    km, kc, startup, info = start(env_extra)
    result = {'startup_seconds': startup, 'kernel_info': info['content'] if info else None, 'kernel_info_type': info['msg_type'] if info else None}
    d = Driver(km, kc, env_extra)
    try:
        for n in names:
            t = time.time()
            try:
                result[n] = SCENARIOS[n](d)
            except Exception as e:  # report, do not hide the other scenarios
                result[n] = {'driver_error': repr(e)}
            result[n + '_seconds'] = time.time() - t
        result['alive_at_end'] = km.is_alive()
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    print(json.dumps(result))


if __name__ == '__main__':
    main()
