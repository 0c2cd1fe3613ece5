module example.invalid/tessera/go

go 1.19
