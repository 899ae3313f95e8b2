"""A communicator with a rank and a size and nothing else: enough for DataParallel's
constructor and its shard arithmetic in one process (the all-reduce is supplied apart)."""


class FakeComm:
    def __init__(self, rank: int, size: int) -> None:
        self.rank, self.size = rank, size

    def Get_rank(self) -> int:
        return self.rank

    def Get_size(self) -> int:
        return self.size
