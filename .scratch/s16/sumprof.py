import json,sys,glob,collections
import os; f=max(glob.glob("*.cpuprofile"), key=os.path.getsize)
p=json.load(open(f))
nodes={n['id']:n for n in p['nodes']}
dt=collections.Counter()
samples=p['samples']; deltas=p['timeDeltas']
for s,d in zip(samples,deltas): dt[s]+=d
self=collections.Counter()
for nid,t in dt.items():
    n=nodes[nid]; cf=n['callFrame']
    key=f"{cf['functionName'] or '(anon)'} {cf['url'].split('/')[-1]}:{cf['lineNumber']}"
    self[key]+=t
tot=sum(self.values())
for k,v in self.most_common(40): print(f"{v/1000:8.0f} ms {100*v/tot:5.1f}% {k}")
