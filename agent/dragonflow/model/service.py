from dragonflow.model import base
from dragonflow.model import fields as f


@base.register
class Service(base.Model):
    """A running daemon (controller, BGP speaker, ...), written at start.

    Liveness is not in this record: heartbeats go to a separate znode that
    is not part of the change log (see dragonflow.nb.health), so they do not
    fan out change events to every agent.
    """

    table = 'service'
    cli_name = 'service'
    cli_columns = ('id', 'binary', 'chassis', 'host')

    binary = f.String(required=True, help='daemon name, e.g. df-local-controller')
    chassis = f.Ref('chassis', enforced=False, help='chassis it runs on')
    host = f.String(help='host name')
    software_version = f.String(help='dragonflow version of the daemon')
    report_interval = f.Number(default=25.0, help='heartbeat period, seconds')
    started_at = f.Number(help='start time, seconds since the epoch')
