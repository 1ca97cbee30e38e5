module llamactl.dev/client/go

go 1.22
